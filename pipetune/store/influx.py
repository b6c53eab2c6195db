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

Field types. InfluxDB fixes a field's type per shard (a week by default): once `accuracy` was
written as a float, an int `accuracy=1` is a field type conflict, so write floats as floats
(`float(x)`). Types read back as InfluxDB stored them: an int stays an int, and a float stays
a float even when integral (`2.0`; the JSON answer says `2`, the field's declared type fixes
it). A NaN, infinite or None field is not stored (InfluxDB has no null); instead the boolean
field `_null.<name>` is written, so it reads back as None, as in the SQLite store (and a
point with no fields at all is stored as `_null.=true`). Field keys starting with `_null.` are
reserved. Because InfluxDB merges a rewritten point field by field, this keeps the merge rule
of `Store` exactly: a later null never erases a stored value.

InfluxDB cannot store some names: empty tag values, a newline anywhere in a name, a backslash
at the end of a name or before a space, comma or '=', the key `time`, integers beyond 64
bits. Such points are refused with a message naming them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from pipetune.errors import PipeTuneError
from pipetune.store.base import Point, Store, StoreStatus
from pipetune.store.credentials import Credentials
from pipetune.store.spool import Spool

log = logging.getLogger(__name__)

NULL_PREFIX = "_null."  # `_null.loss=true`: loss was NaN or None
_MIN_TIME_NS, _MAX_TIME_NS = -9223372036854775806, 9223372036854775806
_INT64 = (-(2**63), 2**63 - 1)
_BAD_BACKSLASH = re.compile(r"\\(?=[ ,=]|$)")
_QUERY_CHUNK = 10_000


class InfluxStoreError(PipeTuneError):
    """The InfluxDB store could not do what was asked."""


class PointsRejected(InfluxStoreError):
    """Points that InfluxDB cannot or will not store; they are not retried."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:10]
        more = len(self.problems) - len(shown)
        lines = [f"InfluxDB store: {len(self.problems)} problem(s) with points:"]
        lines += [f"  - {p}" for p in shown] + ([f"  - … and {more} more"] if more else [])
        super().__init__("\n".join(lines))


class InfluxAuthError(InfluxStoreError):
    """The server refused the credentials (see pipetune/store/credentials.py)."""

    exit_code = 2


class StoreUnavailable(InfluxStoreError):
    """The server cannot be reached, so a query cannot be answered."""


class _Unreachable(Exception):
    """Internal: refused connection, timeout or 5xx; the batch belongs in the spool."""


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
            checked = _check_points(points)
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
                except _Unreachable as e:
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

        lines = [_line(p) for p in points]
        try:
            with self._translated():
                self._client.write(
                    lines, params={"db": self.database, "precision": "n"}, protocol="line"
                )
            self._mark_up()
        except InfluxDBClientError as e:
            if e.code == 403:
                raise _auth_error(self.location, e) from None
            message = _server_message(e)
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
                self._client.query(f"CREATE DATABASE {_ident(self.database)}", method="POST")
            self._mark_up()
        except InfluxDBClientError as e:
            if e.code != 403:  # 403: a non-admin user; the database must already exist
                raise InfluxStoreError(
                    f"cannot create database {self.database!r} at {self.location}: "
                    f"{_server_message(e)}"
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
            wanted = {k: str(v) for k, v in (tags or {}).items()}
            if any(v == "" for v in wanted.values()):
                return []  # InfluxDB stores no empty tag value, so nothing can match
            conditions = [f"{_ident(k)}::tag = {_literal(v)}" for k, v in sorted(wanted.items())]
            if start_ns is not None:
                conditions.append(f"time >= {int(start_ns)}")
            if end_ns is not None:
                conditions.append(f"time <= {int(end_ns)}")
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            source = _ident(measurement)
            statement = (
                f"SELECT *::field FROM {source}{where} GROUP BY *; SHOW FIELD KEYS FROM {source}"
            )
            return _points(measurement, self._results(statement))

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
        except _Unreachable as e:
            self._mark_down(str(e))
            raise StoreUnavailable(f"InfluxDB at {self.location} is unreachable: {e}") from None
        except InfluxDBClientError as e:
            raise InfluxStoreError(f"query failed: {_server_message(e)}") from None
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
            except _Unreachable as e:
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
        return _translated(self.location)

    def _check_open(self) -> None:
        if self._closed:
            raise InfluxStoreError(f"InfluxDB store for {self.location} is closed")

    def _release(self) -> None:
        self._client.close()
        self._spool.close()


@contextmanager
def _translated(location: str) -> Iterator[None]:
    """Turn the transport's failures into `_Unreachable` and 401s into `InfluxAuthError`."""
    import requests
    from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError

    try:
        yield
    except requests.exceptions.RequestException as e:
        raise _Unreachable(f"{type(e).__name__}: {e}") from None
    except InfluxDBServerError as e:
        raise _Unreachable(f"server error: {_server_message(e)}") from None
    except InfluxDBClientError as e:
        if e.code != 401:
            raise
        raise _auth_error(location, e) from None


def _auth_error(location: str, e: Any) -> InfluxAuthError:
    return InfluxAuthError(
        f"InfluxDB at {location} refused the credentials ({e.code}: {_server_message(e)}); "
        "set PIPETUNE_INFLUX_USER and PIPETUNE_INFLUX_PASSWORD, or PIPETUNE_INFLUX_CREDENTIALS"
    )


# ---------------------------------------------------------------------- validation, encoding


def _check_points(points: list[Point]) -> list[Point]:
    """Normalized copies (NaN → None, tag values as str); every problem reported at once."""
    problems: list[str] = []
    checked = []
    for i, p in enumerate(points):
        where = f"points[{i}] ({p.measurement!r})"
        found: list[str] = []
        _check_name(found, "measurement", p.measurement)
        if isinstance(p.measurement, str) and p.measurement.startswith("#"):
            found.append("measurement: cannot start with '#'")
        tags = {k: str(v) for k, v in p.tags.items()}
        for key, value in tags.items():
            _check_name(found, "tag key", key)
            _check_name(found, f"tag {key!r} value", value)
        fields: dict[str, Any] = {}
        for key, value in p.fields.items():
            _check_name(found, "field key", key)
            if key.startswith(NULL_PREFIX) or key in tags:
                found.append(f"field key {key!r}: reserved or also used as a tag")
            fields[key] = _field_value(found, key, value)
        if isinstance(p.time_ns, bool) or not isinstance(p.time_ns, int):
            found.append(f"time_ns: expected an int, found {p.time_ns!r}")
        elif not _MIN_TIME_NS <= p.time_ns <= _MAX_TIME_NS:
            found.append(f"time_ns {p.time_ns} is outside InfluxDB's range")
        problems += [f"{where}: {f}" for f in found]
        checked.append(Point(p.measurement, tags, fields, p.time_ns))
    if problems:
        raise PointsRejected(problems)
    return checked


def _check_name(found: list[str], what: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        found.append(f"{what}: expected a non-empty string, found {name!r}")
    elif "\n" in name or "\r" in name:
        found.append(f"{what} {name!r}: contains a line break")
    elif _BAD_BACKSLASH.search(name):
        found.append(f"{what} {name!r}: a backslash at the end or before ' ', ',' or '='")
    elif name == "time":
        found.append(f"{what}: 'time' is reserved by InfluxDB")


def _field_value(found: list[str], key: str, value: object) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Integral):
        if not _INT64[0] <= int(value) <= _INT64[1]:
            found.append(f"field {key!r}: {value} does not fit in InfluxDB's 64-bit integer")
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    found.append(f"field {key!r}: unsupported type {type(value).__name__} ({value!r})")
    return None


def _line(p: Point) -> str:
    """One line of line protocol for a checked point."""
    head = p.measurement.replace(",", r"\,").replace(" ", r"\ ")
    for key in sorted(p.tags):
        head += f",{_escape(key)}={_escape(p.tags[key])}"
    fields = [f"{_escape(k)}={_value(v)}" for k, v in sorted(p.fields.items()) if v is not None]
    fields += [f"{_escape(NULL_PREFIX + k)}=true" for k, v in sorted(p.fields.items()) if v is None]
    if not p.fields:
        fields.append(f"{_escape(NULL_PREFIX)}=true")
    return f"{head} {','.join(fields)} {p.time_ns}"


def _escape(name: str) -> str:
    return name.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _ident(name: str) -> str:
    """An InfluxQL identifier: double quotes, with backslash and double quote escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    """An InfluxQL string literal: single quotes, with backslash and single quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _server_message(e: Any) -> str:
    content = getattr(e, "content", e)
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip()


# ---------------------------------------------------------------------- decoding


def _points(measurement: str, results: list[dict[str, Any]]) -> list[Point]:
    types: dict[str, set[str]] = {}
    for result in results:
        if result.get("statement_id") == 1:
            for series in result.get("series", []):
                for key, kind in series["values"]:
                    types.setdefault(key, set()).add(kind)
    floats = {k for k, kinds in types.items() if kinds == {"float"}}
    points = [
        point
        for result in results
        if result.get("statement_id") == 0
        for series in result.get("series", [])
        for point in _series_points(measurement, series, floats)
    ]
    points.sort(key=lambda p: p.time_ns)  # stable: series order breaks ties
    return points


def _series_points(measurement: str, series: dict[str, Any], floats: set[str]) -> Iterator[Point]:
    tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
    columns = series["columns"]
    for row in series.get("values", []):
        fields: dict[str, Any] = {}
        nulls: list[str] = []
        time_ns = 0
        for column, value in zip(columns, row, strict=True):
            if column == "time":
                time_ns = int(value)
            elif column.startswith(NULL_PREFIX):
                if value is True and column != NULL_PREFIX:
                    nulls.append(column[len(NULL_PREFIX) :])
            elif value is not None:
                is_int = isinstance(value, int) and not isinstance(value, bool)
                fields[column] = float(value) if is_int and column in floats else value
        for name in nulls:
            fields.setdefault(name, None)
        yield Point(measurement, dict(tags), fields, time_ns)
