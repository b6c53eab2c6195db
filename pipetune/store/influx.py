"""The InfluxDB 1.x store (server: Debian `influxdb` 1.6; client: PyPI `influxdb` 5.3.2).

Writes. `write()` validates every point at once (a bad point raises `PointsRejected` and
nothing of that call is kept), then buffers. The buffer is sent in batches of `batch_size`
points, when its oldest point has waited `max_delay_s`, on `flush()` and on `close()`.
Lines are sent with precision `n` and each point's own `time_ns`; InfluxDB overwrites a point
with the same measurement + tags + time, so sending a batch twice is harmless.

The server going away loses nothing. A batch that meets a refused connection, a timeout or a
5xx goes to the local spool (`spool.py`, fsynced) and the call returns normally. Every later
send first replays the spool, oldest first; spooled points are removed only after the server
acknowledged them. After a failure, `write()` keeps away from the network for `retry_after_s`
(doubling up to `max_retry_after_s`) so a dead server does not cost a timeout per write;
`flush()`, `close()` and `query()` always try. A new `InfluxStore` on the same `spool_path`
replays what an earlier process left there.

A 4xx that means the points are bad (a field type conflict, an invalid name) is not retried:
`PointsRejected` carries the server's message; spooled points refused that way move to the
spool's `rejected` table (kept, counted in `status()`, never retried). 401/403 raise
`InfluxAuthError` (the batch stays spooled).

Reads. `query()` flushes first, so it sees this store's own writes; when the server cannot be
reached it raises `StoreUnavailable` (spooled points cannot be queried). Tags match exactly
(`"tag"::tag = 'value'`, quoted and escaped), the window is inclusive, in ns, by time.

Field types and names: what InfluxDB can store, and how None and NaN fields are kept, is in
`influx_protocol.py`; points it cannot store are refused with a message naming them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pipetune.store.base import Point, Store, StoreStatus
from pipetune.store.credentials import Credentials
from pipetune.store.influx_errors import (
    InfluxAuthError,
    InfluxStoreError,
    PointsRejected,
    StoreUnavailable,
    Unreachable,
    auth_error,
    translated,
)
from pipetune.store.influx_protocol import (
    check_points,
    decode_points,
    ident,
    select_statement,
    server_message,
    to_line,
)
from pipetune.store.spool import Spool

__all__ = [
    "InfluxAuthError",
    "InfluxStore",
    "InfluxStoreError",
    "PointsRejected",
    "StoreUnavailable",
]

log = logging.getLogger(__name__)

_QUERY_CHUNK = 10_000


class InfluxStore(Store):
    def __init__(
        self,
        host: str,
        port: int,
        database: str,
        credentials: Credentials,
        spool_path: Path,
        *,
        batch_size: int = 500,
        timeout_s: float = 5.0,
        max_delay_s: float = 10.0,
        retry_after_s: float = 1.0,
        max_retry_after_s: float = 60.0,
    ) -> None:
        if batch_size < 1 or timeout_s <= 0 or max_delay_s < 0 or retry_after_s < 0:
            raise ValueError(
                f"InfluxStore: need batch_size ≥ 1, timeout_s > 0, max_delay_s ≥ 0, "
                f"retry_after_s ≥ 0; got {batch_size}, {timeout_s}, {max_delay_s}, "
                f"{retry_after_s}"
            )
        from influxdb import InfluxDBClient

        self.host, self.port, self.database = host, port, database
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self._client = InfluxDBClient(
            host=host,
            port=port,
            username=credentials.user,
            password=credentials.password,
            database=database,
            timeout=timeout_s,
            retries=1,  # retrying is ours: the spool
        )
        self._spool = Spool(spool_path)
        self._lock = threading.RLock()
        self._buffer: list[Point] = []
        self._buffered_since = 0.0
        self._database_ready = False
        self._initial_retry = retry_after_s
        self._max_retry = max(max_retry_after_s, retry_after_s)
        self._retry_after = retry_after_s
        self._retry_at = 0.0
        self._last_problem = ""
        self._closed = False
        try:
            self._deliver([], force=True)  # create the database, replay an old spool
        except PointsRejected as e:
            self._last_problem = str(e)
            log.warning("%s", e)
        except BaseException:
            self._release()
            raise

    @property
    def location(self) -> str:
        return f"http://{self.host}:{self.port}/{self.database}"

    # ------------------------------------------------------------------ writing

    def write(self, points: list[Point]) -> None:
        with self._lock:
            self._check_open()
            checked, problems = check_points(points)
            if problems:
                raise PointsRejected(problems)
            if not checked:
                return
            if not self._buffer:
                self._buffered_since = time.monotonic()
            self._buffer.extend(checked)
            overdue = time.monotonic() - self._buffered_since >= self.max_delay_s
            retry_due = time.monotonic() >= self._retry_at and not self._spool.empty()
            if overdue or retry_due:
                send, self._buffer = self._buffer, []
            else:
                full = len(self._buffer) - len(self._buffer) % self.batch_size
                send, self._buffer = self._buffer[:full], self._buffer[full:]
                if self._buffer and send:
                    self._buffered_since = time.monotonic()
            if send:
                self._deliver(self._batches(send), force=False)

    def flush(self) -> None:
        """Replay the spool and send the buffer now, even while backing off."""
        with self._lock:
            self._check_open()
            send, self._buffer = self._buffer, []
            self._deliver(self._batches(send), force=True)

    def close(self) -> None:
        """Flush (what cannot be sent stays in the spool for next time) and release."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            finally:
                self._closed = True
                self._release()

    def _batches(self, points: list[Point]) -> list[list[Point]]:
        return [points[i : i + self.batch_size] for i in range(0, len(points), self.batch_size)]

    def _deliver(self, batches: list[list[Point]], force: bool) -> None:
        """Replay the spool, then send `batches`; whatever was not acknowledged is spooled."""
        rejected: list[str] = []
        pending = list(batches)
        try:
            if force or time.monotonic() >= self._retry_at:
                try:
                    self._ensure_database()
                    rejected += self._replay()
                    while pending:
                        try:
                            self._send(pending[0])
                        except PointsRejected as e:
                            rejected += e.problems
                        pending.pop(0)
                except Unreachable as e:
                    self._mark_down(str(e))
        finally:
            self._spool.append([p for batch in pending for p in batch])
        if rejected:
            raise PointsRejected(rejected)

    def _replay(self) -> list[str]:
        rejected: list[str] = []
        while head := self._spool.head(self.batch_size):
            try:
                self._send([s.point for s in head])
            except PointsRejected as e:
                self._spool.reject(head, "\n".join(e.problems))
                rejected += [
                    f"{p} (spooled batch of {len(head)} moved to the `rejected` table of "
                    f"{self._spool.path})"
                    for p in e.problems
                ]
                continue
            self._spool.remove(head)
        return rejected

    def _send(self, points: list[Point], retried: bool = False) -> None:
        from influxdb.exceptions import InfluxDBClientError

        lines = [to_line(p) for p in points]
        try:
            with self._translated():
                self._client.write(
                    lines, params={"db": self.database, "precision": "n"}, protocol="line"
                )
            self._mark_up()
        except InfluxDBClientError as e:
            if e.code == 403:
                raise auth_error(self.location, e) from None
            message = server_message(e)
            if e.code == 404 and "database not found" in message and not retried:
                self._database_ready = False
                self._ensure_database()
                self._send(points, retried=True)
                return
            raise PointsRejected(
                [f"server refused a batch of {len(points)} point(s) ({e.code}): {message}"]
            ) from None

    def _ensure_database(self) -> None:
        if self._database_ready:
            return
        from influxdb.exceptions import InfluxDBClientError

        try:
            with self._translated():
                self._client.query(f"CREATE DATABASE {ident(self.database)}", method="POST")
            self._mark_up()
        except InfluxDBClientError as e:
            if e.code != 403:  # 403: a non-admin user; the database must already exist
                raise InfluxStoreError(
                    f"cannot create database {self.database!r} at {self.location}: "
                    f"{server_message(e)}"
                ) from None
        self._database_ready = True

    def _mark_up(self) -> None:
        """The server answered: writes may use the network again."""
        self._retry_after, self._retry_at, self._last_problem = self._initial_retry, 0.0, ""

    def _mark_down(self, reason: str) -> None:
        self._last_problem = f"unreachable: {reason}"
        self._retry_at = time.monotonic() + self._retry_after
        self._retry_after = min(self._retry_after * 2, self._max_retry)

    # ------------------------------------------------------------------ reading

    def query(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Point]:
        """Flush, then read the points (see the module doc for matching and field types)."""
        with self._lock:
            self.flush()
            if not self._spool.empty():
                raise StoreUnavailable(
                    f"InfluxDB at {self.location} is {self._last_problem}; "
                    f"{len(self._spool)} point(s) wait in {self._spool.path}"
                )
            statement = select_statement(measurement, tags, start_ns, end_ns)
            if statement is None:
                return []
            return decode_points(measurement, self._results(statement))

    def _results(self, statement: str) -> list[dict[str, Any]]:
        """Every result object of a chunked JSON answer (chunking bypasses max-row-limit)."""
        from influxdb.exceptions import InfluxDBClientError

        params = {
            "q": statement,
            "db": self.database,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(_QUERY_CHUNK),
        }
        results: list[dict[str, Any]] = []
        try:
            with self._translated():
                response = self._client.request(
                    "query", params=params, headers={"Accept": "application/json"}, stream=True
                )
                with response:
                    for line in response.iter_lines():
                        if line:
                            answer = json.loads(line)
                            if "error" in answer:
                                raise InfluxStoreError(f"query failed: {answer['error']}")
                            results += answer.get("results", [])
            self._mark_up()
        except Unreachable as e:
            self._mark_down(str(e))
            raise StoreUnavailable(f"InfluxDB at {self.location} is unreachable: {e}") from None
        except InfluxDBClientError as e:
            raise InfluxStoreError(f"query failed: {server_message(e)}") from None
        for result in results:
            error = result.get("error")
            if error and not error.startswith("database not found"):
                raise InfluxStoreError(f"query failed: {error}\n  query: {statement}")
        return results

    # ------------------------------------------------------------------ status

    def status(self) -> StoreStatus:
        from influxdb.exceptions import InfluxDBClientError

        with self._lock:
            version, reachable, problem = None, True, self._last_problem
            try:
                with self._translated():
                    version = str(self._client.ping())
            except Unreachable as e:
                reachable, problem = False, f"unreachable: {e}"
            except (InfluxDBClientError, KeyError) as e:
                reachable, problem = False, f"not an InfluxDB server? {e}"
            spooled = 0 if self._closed else len(self._spool)
            rejected = 0 if self._closed else self._spool.rejected_count()
            where = f"spool: {self._spool.path}" if spooled or rejected else ""
            return StoreStatus(
                kind="influxdb",
                location=self.location,
                reachable=reachable,
                version=version,
                buffered=len(self._buffer),
                spooled=spooled,
                rejected=rejected,
                detail="; ".join(part for part in (problem, where) if part),
            )

    # ------------------------------------------------------------------ plumbing

    def _translated(self) -> AbstractContextManager[None]:
        return translated(self.location)

    def _check_open(self) -> None:
        if self._closed:
            raise InfluxStoreError(f"InfluxDB store for {self.location} is closed")

    def _release(self) -> None:
        self._client.close()
        self._spool.close()
