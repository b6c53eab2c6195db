"""InfluxStore behaviour beyond the contract: the server going away, the spool, bad points,
batching, timeouts, 5xx, authentication, and where credentials come from.

Tests that need a server use a real `influxd` (tests/influxd.py); without it they fail under
CI=true and are skipped elsewhere. The rest run everywhere.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipetune.store.base import Point
from pipetune.store.credentials import (
    ANONYMOUS,
    FILE_VAR,
    PASSWORD_VAR,
    USER_VAR,
    Credentials,
    CredentialsError,
    load_credentials,
)
from pipetune.store.influx import (
    InfluxAuthError,
    InfluxStore,
    PointsRejected,
    StoreUnavailable,
)
from pipetune.store.spool import Spool
from tests.influxd import Influxd, free_port, require_influxd

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000_000_000
DB = "tuner"


def points(first: int, n: int, measurement: str = "epoch") -> list[Point]:
    return [
        Point(measurement, {"run": "r1", "batch": "32"}, {"seq": i, "loss": 1 / (i + 1)}, T0 + i)
        for i in range(first, first + n)
    ]


def open_store(port: int, tmp: Path, **options: Any) -> InfluxStore:
    return InfluxStore("127.0.0.1", port, DB, ANONYMOUS, tmp / "spool.sqlite", **options)


def cli_count(server: Influxd, measurement: str = "epoch", field: str = "seq") -> int:
    """Count with the real `influx` CLI, not with the code under test."""
    out = server.influx_cli(DB, f'SELECT count("{field}") FROM "{measurement}"')
    lines = [line for line in out.splitlines() if line.strip()]
    return 0 if len(lines) < 2 else int(lines[-1].split(",")[-1])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    require_influxd()
    with Influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Influxd]:
    """A server of the test's own, to stop and start."""
    require_influxd()
    with Influxd(tmp_path / "influxd") as server:
        yield server


@pytest.fixture
def fresh_db(shared: Influxd) -> Iterator[Influxd]:
    shared.influx_cli(DB, f"DROP DATABASE {DB}")
    yield shared


# ---------------------------------------------------------------------- the server goes away


def test_server_going_away_mid_run_loses_nothing_and_duplicates_nothing(
    own: Influxd, tmp_path: Path
) -> None:
    store = open_store(own.port, tmp_path, batch_size=10, retry_after_s=0)
    store.write(points(0, 10))  # one full batch: sent
    assert store.status().spooled == 0

    own.stop(kill=True)
    store.write(points(10, 20))  # the server is gone: spooled, no exception
    status = store.status()
    assert (status.reachable, status.spooled, status.buffered) == (False, 20, 0)
    with pytest.raises(StoreUnavailable, match="20 point"):
        store.query("epoch")

    own.start()  # same data dir, same port
    store.write(points(30, 10))  # replays the spool first, then sends
    assert store.status().spooled == 0
    got = store.query("epoch")
    assert [p.fields["seq"] for p in got] == list(range(40))
    assert cli_count(own) == 40
    store.close()


def test_queries_fail_clearly_while_down_and_work_again_after(own: Influxd, tmp_path: Path) -> None:
    store = open_store(own.port, tmp_path, retry_after_s=60)
    store.write(points(0, 3))
    store.flush()
    own.stop(kill=True)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.query("epoch")
    own.start()
    assert len(store.query("epoch")) == 3  # no write needed to notice the server is back
    store.close()


def test_down_at_start_then_closed_with_a_spool_replays_on_reopen(
    tmp_path: Path,
) -> None:
    require_influxd()
    server = Influxd(tmp_path / "influxd")  # configured, not started: nothing listens
    store = open_store(server.port, tmp_path, batch_size=7)  # does not crash
    store.write(points(0, 20))
    store.close()  # the 6 buffered points are spooled too
    spool = Spool(tmp_path / "spool.sqlite")
    assert len(spool) == 20
    spool.close()

    with server:
        reopened = open_store(server.port, tmp_path)  # replays in the constructor
        assert reopened.status().spooled == 0
        assert cli_count(server) == 20
        assert [p.fields["seq"] for p in reopened.query("epoch")] == list(range(20))
        reopened.close()


def test_a_process_that_dies_with_a_spool_is_replayed_by_the_next(
    own: Influxd, tmp_path: Path
) -> None:
    own.stop(kill=True)
    child = f"""
import os
from pathlib import Path
from pipetune.store.base import Point
from pipetune.store.credentials import ANONYMOUS
from pipetune.store.influx import InfluxStore
store = InfluxStore("127.0.0.1", {own.port}, "{DB}", ANONYMOUS, Path({str(tmp_path)!r}) /
                    "spool.sqlite", batch_size=5, retry_after_s=0)
for i in range(25):
    store.write([Point("epoch", {{"run": "r1"}}, {{"seq": i}}, {T0} + i)])
os._exit(0)  # dies without close()
"""
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    own.start()
    store = open_store(own.port, tmp_path)
    assert store.status().spooled == 0
    assert cli_count(own) == 25
    store.close()


def test_replaying_the_same_spooled_points_twice_yields_no_duplicates(
    fresh_db: Influxd, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append(points(0, 30))
    spool.append(points(0, 30))  # as if a replay was interrupted after the server acked
    spool.close()
    store = open_store(fresh_db.port, tmp_path)
    assert store.status().spooled == 0
    assert len(store.query("epoch")) == 30
    assert cli_count(fresh_db) == 30
    store.close()


def test_a_dropped_database_is_created_again(fresh_db: Influxd, tmp_path: Path) -> None:
    store = open_store(fresh_db.port, tmp_path, max_delay_s=0)
    store.write(points(0, 1))
    fresh_db.influx_cli(DB, f"DROP DATABASE {DB}")
    store.write(points(1, 1))
    assert [p.fields["seq"] for p in store.query("epoch")] == [1]
    store.close()


# ---------------------------------------------------------------------- bad points


def test_a_field_type_conflict_raises_the_server_message_and_is_not_spooled(
    fresh_db: Influxd, tmp_path: Path
) -> None:
    store = open_store(fresh_db.port, tmp_path, max_delay_s=0)
    store.write([Point("epoch", {"run": "r"}, {"accuracy": 0.5}, T0)])
    with pytest.raises(PointsRejected, match="field type conflict"):
        store.write([Point("epoch", {"run": "r"}, {"accuracy": "high"}, T0 + 1)])
    assert store.status().spooled == 0
    store.write([Point("epoch", {"run": "r"}, {"accuracy": 0.75}, T0 + 2)])  # still works
    assert [p.fields["accuracy"] for p in store.query("epoch")] == [0.5, 0.75]
    store.close()


def test_spooled_points_the_server_refuses_are_set_aside_not_retried_forever(
    fresh_db: Influxd, tmp_path: Path
) -> None:
    store = open_store(fresh_db.port, tmp_path / "a", max_delay_s=0)
    store.write([Point("epoch", {"run": "r"}, {"accuracy": 0.5}, T0)])
    store.close()
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append([Point("epoch", {"run": "r"}, {"accuracy": "high"}, T0 + 1)])
    spool.close()
    reopened = open_store(fresh_db.port, tmp_path)  # logs the refusal, does not raise
    status = reopened.status()
    assert (status.spooled, status.rejected) == (0, 1)
    assert "field type conflict" in status.detail
    reopened.flush()  # nothing left to retry
    reopened.close()


def test_points_influxdb_cannot_store_are_refused_before_anything_is_kept(
    tmp_path: Path,
) -> None:
    store = open_store(free_port(), tmp_path)  # no server needed: refused by validation
    bad = [
        Point("ok", {"run": "trailing\\"}, {"v": 1.0}, T0),
        Point("line\nbreak", {}, {"v": 1.0}, T0),
        Point("ok", {}, {"time": 1.0}, T0),
        Point("ok", {}, {"big": 2**70}, T0),
        Point("ok", {}, {"obj": object()}, T0),
        Point("ok", {"run": ""}, {"v": 1.0}, T0),
        Point("ok", {}, {"v": 1.0}, 2**63),
    ]
    with pytest.raises(PointsRejected) as raised:
        store.write([Point("ok", {}, {"v": 1.0}, T0), *bad])
    assert len(raised.value.problems) == len(bad)
    assert "points[1]" in str(raised.value) and "backslash" in str(raised.value)
    status = store.status()
    assert (status.buffered, status.spooled) == (0, 0)
    store.close()


# ---------------------------------------------------------------------- batching, volume


def test_points_are_sent_in_batches_and_on_flush(fresh_db: Influxd, tmp_path: Path) -> None:
    store = open_store(fresh_db.port, tmp_path, batch_size=100, max_delay_s=3600)
    store.write(points(0, 250))
    assert store.status().buffered == 50
    assert cli_count(fresh_db) == 200
    store.flush()
    assert store.status().buffered == 0
    assert cli_count(fresh_db) == 250
    store.close()


def test_five_thousand_points_counted_by_the_influx_cli(fresh_db: Influxd, tmp_path: Path) -> None:
    store = open_store(fresh_db.port, tmp_path)
    store.write(points(0, 5000, "power"))
    store.flush()
    assert cli_count(fresh_db, "power") == 5000
    assert len(store.query("power", {"batch": "32"})) == 5000
    assert store.query("power", {"batch": "320"}) == []
    store.close()


def test_status_reports_version_and_location(shared: Influxd, tmp_path: Path) -> None:
    store = open_store(shared.port, tmp_path)
    status = store.status()
    assert status.reachable and status.kind == "influxdb"
    assert status.version is not None and status.version.startswith("1.")
    assert status.location == f"http://127.0.0.1:{shared.port}/{DB}"
    store.close()


# ---------------------------------------------------------------------- timeouts, 5xx


def test_a_server_that_never_answers_times_out_into_the_spool(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        started = time.monotonic()
        store = open_store(port, tmp_path, timeout_s=0.3, max_delay_s=0)
        store.write(points(0, 3))  # backing off after the constructor's timeout: no wait
        store.flush()
        assert time.monotonic() - started < 5
        assert store.status().spooled == 3
        store.close()


class _Unavailable(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).requests.append(urllib.parse.urlparse(self.path).path)
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error":"overloaded"}')

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_5xx_answers_spool_and_writes_back_off_from_a_failing_server(tmp_path: Path) -> None:
    _Unavailable.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        store = open_store(port, tmp_path, max_delay_s=0, retry_after_s=60)
        assert len(_Unavailable.requests) == 1  # the constructor tried once
        store.write(points(0, 2))  # backing off: spooled without a request
        assert len(_Unavailable.requests) == 1
        store.flush()  # flush always tries
        assert len(_Unavailable.requests) == 2
        status = store.status()
        assert (status.reachable, status.spooled) == (False, 2)
        assert "overloaded" in status.detail
        store.close()
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------- authentication


def test_credentials_are_used_and_wrong_ones_refused(tmp_path: Path) -> None:
    require_influxd()
    with Influxd(tmp_path / "influxd", auth_enabled=True) as server:
        create_admin = urllib.parse.urlencode(
            {"q": "CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES"}
        )
        urllib.request.urlopen(f"{server.url}/query", data=create_admin.encode(), timeout=5)

        for wrong in (ANONYMOUS, Credentials("admin", "nope")):
            with pytest.raises(InfluxAuthError, match="refused the credentials"):
                InfluxStore("127.0.0.1", server.port, DB, wrong, tmp_path / "s.sqlite")

        good = load_credentials(environ={USER_VAR: "admin", PASSWORD_VAR: "s3cret"})
        store = InfluxStore("127.0.0.1", server.port, DB, good, tmp_path / "s.sqlite")
        store.write(points(0, 3))
        assert len(store.query("epoch")) == 3
        store.close()


# ---------------------------------------------------------------------- where credentials come from


def _secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_no_credentials_means_anonymous() -> None:
    assert load_credentials(environ={}) == ANONYMOUS
    assert ANONYMOUS.anonymous


def test_credentials_from_environment_variables_never_print_the_password() -> None:
    creds = load_credentials(environ={USER_VAR: "tuner", PASSWORD_VAR: "pa ss"})
    assert (creds.user, creds.password) == ("tuner", "pa ss")
    assert "pa ss" not in repr(creds)


@pytest.mark.parametrize("env", [{USER_VAR: "tuner"}, {PASSWORD_VAR: "x"}])
def test_half_set_environment_variables_are_an_error(env: dict[str, str]) -> None:
    with pytest.raises(CredentialsError, match="must be set together"):
        load_credentials(environ=env)


@pytest.mark.parametrize(
    ("text", "user", "password"),
    [
        ('{"user": "tuner", "password": "p:w"}', "tuner", "p:w"),
        ('{"username": "tuner", "password": ""}', "tuner", ""),
        ("tuner:pa:ss\n", "tuner", "pa:ss"),
    ],
)
def test_credentials_file_named_by_the_environment(
    tmp_path: Path, text: str, user: str, password: str
) -> None:
    path = _secret_file(tmp_path / "influx.cred", text)
    creds = load_credentials(environ={FILE_VAR: str(path)})
    assert (creds.user, creds.password) == (user, password)
    assert str(path) in creds.source


def test_an_explicit_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = _secret_file(tmp_path / "c", "filed:pw")
    creds = load_credentials(path, environ={USER_VAR: "env", PASSWORD_VAR: "pw"})
    assert creds.user == "filed"


@pytest.mark.parametrize("mode", [0o644, 0o602])
def test_a_credentials_file_other_users_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret_file(tmp_path / "c", "tuner:pw", mode)
    with pytest.raises(CredentialsError, match=f"chmod 600 {path}"):
        load_credentials(path, environ={})


@pytest.mark.parametrize("text", ["no colon here", '{"user": 1}', "{broken", "a:b\nc:d"])
def test_a_malformed_credentials_file_is_refused(tmp_path: Path, text: str) -> None:
    path = _secret_file(tmp_path / "c", text)
    with pytest.raises(CredentialsError, match=str(path)):
        load_credentials(path, environ={})


def test_a_missing_credentials_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        load_credentials(environ={FILE_VAR: str(tmp_path / "missing")})
