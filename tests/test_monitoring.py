"""The node-side collectors (`monitoring/`) as real processes writing to a real `influxd`.

Each collector runs as a subprocess (`python -m monitoring.X` or `python monitoring/X.py`)
against a real source where this machine has one (perf) and a faithful fake where it has not:
a loopback HTTP server serving the recorded Lindy PDU status, a RAPL sysfs tree in tmp whose
counters a thread advances, a pcm CSV that a thread appends to. Points are read back with the
real `influx` CLI and with `InfluxStore.query`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitoring import common, loop
from monitoring.pdu_power import parse_outlets
from pipetune.store import schema_power
from pipetune.store.base import Point
from pipetune.store.credentials import ANONYMOUS
from pipetune.store.influx import InfluxStore
from pipetune.store.spool import Spool
from pipetune.telemetry.pcm import parse_header
from pipetune.telemetry.perf_events import SOFTWARE_EVENTS, detect_events, perf_is_available
from pipetune.telemetry.rapl import RaplMeter
from tests.influxd import Influxd, free_port, in_ci, require_influxd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "telemetry"
LINDY = DATA / "lindy_ipower_status.json"
PCM_SAMPLE = DATA / "pcm.csv"
SCRIPTS = ("pdu_power", "pcm_power", "rapl_power", "perf_profiler")
OUTLET_WATTS = {0: 87.0, 3: 142.0}  # in the recorded Lindy status
DEADLINE_S = 20.0


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    require_influxd()
    with Influxd(tmp_path_factory.mktemp("influxd")) as srv:
        yield srv


@pytest.fixture
def db(request: pytest.FixtureRequest) -> str:
    """A database of the test's own."""
    return request.node.name.replace("test_", "").replace("[", "_").replace("]", "")[:40]


class _PduHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = LINDY.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pdu_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PduHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def influx_args(port: int, database: str, spool: Path) -> list[str]:
    return [
        "--influx-port",
        str(port),
        "--database",
        database,
        "--spool",
        str(spool),
        "--flush-interval",
        "0",
    ]


def spawn(
    script: str, args: list[str], log: Path, as_file: bool = False
) -> subprocess.Popen[bytes]:
    """A collector process; its output goes to `log` (a pipe could fill up and block it)."""
    target = (
        [str(ROOT / "monitoring" / f"{script}.py")] if as_file else ["-m", f"monitoring.{script}"]
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *target, *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run(script: str, args: list[str], log: Path, as_file: bool = False) -> int:
    proc = spawn(script, args, log, as_file)
    try:
        return proc.wait(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> int:
    proc.send_signal(signum)
    try:
        return proc.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def wait_for(
    what: str, predicate: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"collector exited {proc.returncode} before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {DEADLINE_S} s:\n{log.read_text()}")
        time.sleep(0.05)


def http_count(server: Influxd, database: str, statement: str) -> int:
    """A `SELECT count(...)` through the HTTP API (cheap enough to poll)."""
    query = urllib.parse.urlencode({"db": database, "q": statement})
    with urllib.request.urlopen(f"{server.url}/query?{query}", timeout=5) as response:
        answer = json.loads(response.read())
    series = answer["results"][0].get("series", [])
    return sum(int(s["values"][0][1]) for s in series)


def cli_rows(server: Influxd, database: str, statement: str) -> list[dict[str, str]]:
    """Rows of a query run by the real `influx` CLI (CSV), as dicts."""
    lines = [line for line in server.influx_cli(database, statement).splitlines() if line]
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def open_store(server: Influxd, database: str, tmp: Path) -> InfluxStore:
    return InfluxStore("127.0.0.1", server.port, database, ANONYMOUS, tmp / "reader-spool.sqlite")


# --- pdu_power ----------------------------------------------------------------------------------


def test_pdu_power_runs_until_sigterm_and_writes_one_point_per_node_per_interval(
    server: Influxd, pdu_url: str, db: str, tmp_path: Path
) -> None:
    outlets_file = tmp_path / "outlets.json"
    outlets_file.write_text(json.dumps({"node-b": 3}))
    log = tmp_path / "pdu.log"
    proc = spawn(
        "pdu_power",
        [
            "--url", pdu_url, "--outlet", "node-a=0", "--outlets-file", str(outlets_file),
            "--interval", "0.25", *influx_args(server.port, db, tmp_path / "spool.sqlite"),
        ],
        log,
    )  # fmt: skip
    per_node = 'SELECT count("watts") FROM "power" GROUP BY "node"'
    wait_for("4 points", lambda: http_count(server, db, per_node) >= 4, proc, log)
    assert stop(proc) == 0, log.read_text()
    assert "stopped (SIGTERM)" in log.read_text()

    tag_keys = cli_rows(server, db, 'SHOW TAG KEYS FROM "power"')
    assert sorted(r["tagKey"] for r in tag_keys) == ["domain", "node", "source"]
    field_keys = cli_rows(server, db, 'SHOW FIELD KEYS FROM "power"')
    assert {r["fieldKey"]: r["fieldType"] for r in field_keys} == {
        "joules": "float",
        "watts": "float",
    }
    rows = cli_rows(server, db, 'SELECT "watts", "joules", "node", "source", "domain" FROM "power"')
    assert {r["node"] for r in rows} == {"node-a", "node-b"}
    assert {(r["source"], r["domain"]) for r in rows} == {("pdu", "wall")}
    for r in rows:
        watts = OUTLET_WATTS[0 if r["node"] == "node-a" else 3]
        assert float(r["watts"]) == pytest.approx(watts)
        assert 0.05 < float(r["joules"]) / watts < 1.0  # about one 0.25 s interval

    store = open_store(server, db, tmp_path)
    try:
        points = store.query("power", {"node": "node-b", "source": "pdu", "domain": "wall"})
    finally:
        store.close()
    assert len(points) >= 2
    assert all(p.fields["watts"] == pytest.approx(142.0) for p in points)
    times = [p.time_ns for p in points]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    assert all(0.1 < gap < 2.0 for gap in gaps), gaps  # one point per interval


def test_influxdb_down_keeps_collecting_into_the_spool(
    server: Influxd, pdu_url: str, db: str, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.sqlite"
    log = tmp_path / "pdu.log"
    proc = spawn(
        "pdu_power",
        [
            "--url", pdu_url, "--outlet", "node-a=0", "--interval", "0.2",
            *influx_args(free_port(), db, spool_path),  # nothing listens there
        ],
        log,
    )  # fmt: skip

    def spooled() -> int:
        if not spool_path.exists():
            return 0
        spool = Spool(spool_path)
        try:
            return len(spool)
        finally:
            spool.close()

    wait_for("3 spooled points", lambda: spooled() >= 3, proc, log)
    assert stop(proc) == 0, log.read_text()
    assert "wait in the spool" in log.read_text()
    left = spooled()
    assert left >= 3

    # The spool is the documented schema: a store on the real server replays it.
    store = InfluxStore("127.0.0.1", server.port, db, ANONYMOUS, spool_path)
    try:
        points = store.query("power")
    finally:
        store.close()
    assert len(points) == left
    assert {tuple(sorted(p.tags.items())) for p in points} == {
        (("domain", "wall"), ("node", "node-a"), ("source", "pdu"))
    }
    assert all(p.fields["watts"] == pytest.approx(87.0) for p in points)


# --- rapl_power ---------------------------------------------------------------------------------


def _zone(path: Path, name: str, max_range: int) -> None:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text("1000\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")


def _set_uj(path: Path, value: int) -> None:
    tmp = path.with_name("energy_uj.tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)  # a reader never sees a half-written file


@pytest.fixture
def rapl_tree(tmp_path: Path) -> Iterator[Path]:
    """package-0 (20 W) with its dram zone (5 W), counters advanced by a thread."""
    root = tmp_path / "powercap"
    _zone(root / "intel-rapl:0", "package-0", 262_143_328_850)
    _zone(root / "intel-rapl:0" / "intel-rapl:0:0", "dram", 65_712_999_613)
    zones = {
        root / "intel-rapl:0" / "energy_uj": 20.0,
        root / "intel-rapl:0/intel-rapl:0:0/energy_uj": 5.0,
    }
    done = threading.Event()
    t0 = time.time()

    def advance() -> None:
        while not done.wait(0.005):
            elapsed = time.time() - t0
            for path, watts in zones.items():
                _set_uj(path, 1000 + int(watts * elapsed * 1e6))

    thread = threading.Thread(target=advance, daemon=True)
    thread.start()
    yield root
    done.set()
    thread.join()


def test_rapl_power_once_on_a_sysfs_tree(
    server: Influxd, rapl_tree: Path, db: str, tmp_path: Path
) -> None:
    log = tmp_path / "rapl.log"
    args = [
        "--root", str(rapl_tree), "--node", "n1", "--once", "--interval", "0.5",
        *influx_args(server.port, db, tmp_path / "spool.sqlite"),
    ]  # fmt: skip
    assert run("rapl_power", args, log, as_file=True) == 0, log.read_text()
    rows = cli_rows(
        server,
        db,
        'SELECT "watts", "joules", "domain", "source" FROM "power" WHERE "node" = \'n1\'',
    )
    assert len(rows) == 1, rows
    assert (rows[0]["source"], rows[0]["domain"]) == ("rapl", "package+dram")
    watts, joules = float(rows[0]["watts"]), float(rows[0]["joules"])
    assert watts == pytest.approx(25.0, rel=0.3)  # the writer thread lags a little under load
    assert joules / watts == pytest.approx(0.5, rel=0.1)  # one interval


def test_rapl_power_without_rapl_exits_2_with_the_reason(tmp_path: Path) -> None:
    if Path("/sys/class/powercap/intel-rapl:0").exists():
        pytest.skip("this machine has RAPL")
    log = tmp_path / "rapl.log"
    args = ["--once", *influx_args(free_port(), "unused", tmp_path / "spool.sqlite")]
    assert run("rapl_power", args, log) == 2
    out = log.read_text()
    assert "rapl_power: cannot measure here: no RAPL powercap tree at /sys/class/powercap" in out
    assert not (tmp_path / "spool.sqlite").exists()  # gave up before opening the store


# --- pcm_power ----------------------------------------------------------------------------------


@pytest.fixture
def pcm_csv(tmp_path: Path) -> Iterator[Path]:
    """The recorded pcm CSV's header and first row, re-stamped and appended every 0.1 s like a
    live `pcm.x 0.1 -csv=...` in UTC; each row's energy is 40 W × its interval."""
    group_row, column_row, row = PCM_SAMPLE.read_text().splitlines()[:3]
    layout = parse_header(group_row, column_row)
    (energy,) = layout.energy
    path = tmp_path / "pcm.csv"
    cells = row.split(",")
    done = threading.Event()

    def stamp(at: datetime, joules: float) -> str:
        cells[layout.date] = at.strftime("%Y-%m-%d")
        cells[layout.time] = at.strftime("%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
        cells[energy] = f"{joules:.6f}"
        return ",".join(cells)

    def follow(previous: datetime) -> None:
        while not done.wait(0.1):
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # pcm prints ms
            if now <= previous:
                continue
            with open(path, "a") as f:
                f.write(stamp(now, 40.0 * (now - previous).total_seconds()) + "\n")
            previous = now

    first = datetime.now(UTC).replace(microsecond=0)
    path.write_text(f"{group_row}\n{column_row}\n{stamp(first, 1.0)}\n")
    thread = threading.Thread(target=follow, args=(first,), daemon=True)
    thread.start()
    yield path
    done.set()
    thread.join()


def test_pcm_power_once_follows_a_growing_pcm_csv(
    server: Influxd, pcm_csv: Path, db: str, tmp_path: Path
) -> None:
    log = tmp_path / "pcm.log"
    args = [
        "--csv", str(pcm_csv), "--timezone", "UTC", "--node", "n1", "--once",
        "--interval", "0.5", *influx_args(server.port, db, tmp_path / "spool.sqlite"),
    ]  # fmt: skip
    assert run("pcm_power", args, log) == 0, log.read_text()
    store = open_store(server, db, tmp_path)
    try:
        points = store.query("power", {"node": "n1", "source": "pcm", "domain": "package"})
    finally:
        store.close()
    assert len(points) == 1, log.read_text()
    assert points[0].fields["watts"] == pytest.approx(40.0, rel=0.01)
    assert points[0].fields["joules"] == pytest.approx(40.0 * 0.5, rel=0.2)


# --- perf_profiler ------------------------------------------------------------------------------


def test_perf_profiler_once_writes_the_rates_of_the_supported_software_events(
    server: Influxd, db: str, tmp_path: Path
) -> None:
    ok, why = perf_is_available()
    if not ok:  # CI installs linux-perf: there a missing perf is a failure, not a skip
        (pytest.fail if in_ci() else pytest.skip)(why)
    supported = detect_events(SOFTWARE_EVENTS).supported
    log = tmp_path / "perf.log"
    args = [
        "--node", "n1", "--once", "--interval", "0.5",
        *influx_args(server.port, db, tmp_path / "spool.sqlite"),
    ]  # fmt: skip
    rc = run("perf_profiler", args, log)
    if rc == 2 and "perf" in log.read_text() and not supported:
        (pytest.fail if in_ci() else pytest.skip)(log.read_text())
    assert rc == 0, log.read_text()
    rows = cli_rows(server, db, 'SELECT "rate_per_s", "event", "source", "node" FROM "counters"')
    rates = {r["event"]: float(r["rate_per_s"]) for r in rows}
    assert set(supported) <= set(rates), log.read_text()
    assert {(r["source"], r["node"]) for r in rows} == {("perf", "n1")}
    assert rates["task-clock"] > 100  # msec/s: system-wide, at least a tenth of a CPU
    assert "cycles" not in rates or "cycles" in detect_events(["cycles"]).supported


# --- every script -------------------------------------------------------------------------------


def test_help_of_every_script_says_what_it_measures_and_writes(tmp_path: Path) -> None:
    procs = {
        name: subprocess.run(
            [sys.executable, str(ROOT / "monitoring" / f"{name}.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
        for name in SCRIPTS
    }
    for name, done in procs.items():
        assert done.returncode == 0, done.stderr
        text = " ".join(done.stdout.split())
        assert "writes (schema: pipetune/store/schema_power.py)" in text
        measurement = "counters" if name == "perf_profiler" else "power"
        assert f"measurement `{measurement}`" in text
        assert f"example: python -m monitoring.{name}" in text.replace("sudo ", "")
        assert "--once" in text and "--influx-host" in text and "--spool" in text


def test_bad_options_exit_2_naming_every_problem(tmp_path: Path) -> None:
    log = tmp_path / "pdu.log"
    args = ["--url", "http://127.0.0.1:9", "--outlet", "a", "--outlet", "b=1", "--outlet", "c=1"]
    assert run("pdu_power", [*args, "--once"], log) == 2
    out = log.read_text()
    assert "--outlet 'a': expected NODE=N" in out
    assert "outlet 1 is given to several nodes: b, c" in out


# --- in-process units ---------------------------------------------------------------------------


def test_outlets_merge_file_and_pairs_pairs_win(tmp_path: Path) -> None:
    path = tmp_path / "outlets.json"
    path.write_text(json.dumps({"a": 0, "b": 1}))
    assert parse_outlets(["b=4", "c=2"], path) == {"a": 0, "b": 4, "c": 2}
    path.write_text(json.dumps({"a": -1, "b": "x"}))
    with pytest.raises(ValueError) as err:
        parse_outlets([], path)
    assert "'a': expected an outlet index ≥ 0, found -1" in str(err.value)
    assert "'b': expected an outlet index ≥ 0, found 'x'" in str(err.value)
    with pytest.raises(ValueError, match="no outlets"):
        parse_outlets([], None)


def test_schema_builders_name_every_bad_value() -> None:
    point = schema_power.power_point("n1", "rapl", "package", 12.5, 7, joules=25.0)
    assert point == Point("power", {"node": "n1", "source": "rapl", "domain": "package"},
                          {"watts": 12.5, "joules": 25.0}, 7)  # fmt: skip
    assert "joules" not in schema_power.power_point("n1", "pdu", "wall", 3, 7).fields
    with pytest.raises(ValueError) as err:
        schema_power.power_point("", "rapl", "package", float("nan"), 7, joules=-1.0)
    message = str(err.value)
    assert "tag node" in message and "field watts" in message and "field joules" in message
    counter = schema_power.counter_point("n1", "page-faults", "perf", 3, 9)
    assert counter == Point("counters", {"node": "n1", "event": "page-faults", "source": "perf"},
                            {"rate_per_s": 3.0}, 9)  # fmt: skip
    with pytest.raises(ValueError, match="tag event"):
        schema_power.counter_point("n1", " ", "perf", 1.0, 9)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_current_step_finish_then_stops_the_loop(signum: int) -> None:
    before = signal.getsignal(signum)
    finished: list[int] = []

    def step() -> None:
        if len(finished) == 1:
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # still inside the step when the signal arrives
        finished.append(len(finished))

    outcome = loop.run_until_signalled(step, 0.01)
    assert (outcome.steps, outcome.stopped_by, finished) == (2, signal.Signals(signum).name, [0, 1])
    assert signal.getsignal(signum) is before  # handlers restored


def test_a_failing_step_is_logged_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def step() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("PDU rebooting")
        return len(calls) < 3

    outcome = loop.run_until_signalled(step, 0.01)
    assert (outcome.steps, outcome.failures, outcome.stopped_by) == (3, 1, "finished")


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_meter_collector_windows_are_contiguous_across_recycled_meters(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    _zone(root / "intel-rapl:0", "package-0", 262_143_328_850)
    counter = root / "intel-rapl:0" / "energy_uj"
    clock = _Clock()
    made: list[RaplMeter] = []

    def make() -> RaplMeter:
        made.append(RaplMeter(root, 1.0, clock=clock))
        return made[-1]

    collector = common.MeterCollector(
        [common.Channel("n1", "package", make)], recycle_s=1e-9, clock=clock
    )
    assert collector.availability().ok
    collector.start()
    points = []
    for uj in (1000 + 30_000_000, 1000 + 50_000_000):  # 30 J, then 20 J, 2 s apart
        clock.now += 2.0
        _set_uj(counter, uj)
        (point,) = collector.collect()
        points.append(point)
    assert [p.fields for p in points] == [
        {"watts": 15.0, "joules": 30.0},
        {"watts": 10.0, "joules": 20.0},
    ]
    assert [p.time_ns for p in points] == [1_002_000_000_000, 1_004_000_000_000]
    assert len(made) == 3  # the first meter, then a fresh one at each interval's end
