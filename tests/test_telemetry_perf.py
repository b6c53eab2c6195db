"""perf: the pure CSV parser on recorded and hand-written outputs, event detection and the
runner against the real perf on this machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from pipetune.telemetry.perf_events import DEFAULT_EVENTS, detect_events
from pipetune.telemetry.perf_parse import (
    PerfError,
    PerfParseError,
    SampleStatus,
    error_reason,
    parse_counts_csv,
    parse_interval_csv,
)
from pipetune.telemetry.perf_stat import PerfStat
from tests.machine import gone_within

DATA = Path(__file__).parent / "data" / "perf"
needs_perf = pytest.mark.usefixtures("perf_installed")

OK, NS, NC = SampleStatus.OK, SampleStatus.NOT_SUPPORTED, SampleStatus.NOT_COUNTED


def load(name: str):
    return parse_interval_csv((DATA / name).read_text())


# (file, events, intervals, status counts, first time, last time)
RECORDED = [
    ("software-interval.csv", 6, 6, {OK: 36}, 0.207674668, 1.090889623),
    ("unsupported-hw-interval.csv", 9, 6, {OK: 18, NS: 36}, 0.200285902, 1.020793723),
    ("system-wide.csv", 7, 5, {OK: 35}, 0.250418879, 1.140458651),
    ("pid-not-counted.csv", 3, 7, {OK: 18, NC: 3}, 0.300422011, 2.110023524),
    ("intel-hw-interval.csv", 8, 2, {OK: 16}, 1.001023456, 2.002051234),
    ("multiplexed-not-counted.csv", 6, 2, {OK: 7, NC: 3, NS: 2}, 0.500412345, 1.000823456),
]


@pytest.mark.parametrize(("name", "n_events", "n_times", "statuses", "first", "last"), RECORDED)
def test_parser_reads_every_file(name, n_events, n_times, statuses, first, last):
    samples = load(name)
    assert len({s.event for s in samples}) == n_events
    times = sorted({s.time_s for s in samples})
    assert len(times) == n_times
    assert times[0] == first and times[-1] == last
    assert Counter(s.status for s in samples) == statuses
    for s in samples:
        assert (s.value is None) == (s.status != OK)
        assert s.measured_pct is not None


def test_parser_fields_software():
    samples = load("software-interval.csv")
    first = samples[0]
    assert (first.time_s, first.event, first.value, first.unit, first.status) == (
        0.207674668,
        "task-clock",
        135.47,
        "msec",
        "ok",
    )
    assert samples[1].event == "context-switches" and samples[1].unit == ""
    assert samples[1].value == 100.0


def test_parser_names_with_slashes_and_units():
    by_event = {s.event: s for s in load("system-wide.csv")}
    assert by_event["msr/tsc/"].value == 679854175
    assert by_event["duration_time"].unit == "ns"
    line = "     1.000123456,42,,cpu/cache-misses/,1000,100.00,,\n"
    (s,) = parse_interval_csv(line)
    assert s.event == "cpu/cache-misses/" and s.value == 42


def test_parser_not_counted_keeps_measured_pct():
    idle = [s for s in load("pid-not-counted.csv") if s.status == NC]
    assert {s.time_s for s in idle} == {0.601081097}
    assert all(s.measured_pct == 100.0 for s in idle)  # never enabled: the task did not run
    starved = [s for s in load("multiplexed-not-counted.csv") if s.status == NC]
    assert all(s.measured_pct == 0.0 for s in starved)


def test_parser_skips_metric_only_lines():
    samples = load("intel-hw-interval.csv")
    assert all(s.event for s in samples)
    insn = [s for s in samples if s.event == "instructions"]
    assert [s.value for s in insn] == [14411232000, 8808800000]


def test_parser_counting_mode():
    samples = parse_counts_csv((DATA / "counting-mixed.csv").read_text())
    assert len(samples) == 11
    assert [s.event for s in samples if s.status == NS] == [
        "instructions",
        "cycles",
        "cache-misses",
        "LLC-loads",
    ]
    assert {s.time_s for s in samples} == {0.0}


def test_parser_names_the_bad_line():
    text = (
        "# started on x\n\n"
        "     0.2,5,,page-faults,1,100.00,,\n"
        "     0.4,lots,,page-faults,1,100.00,,\n"
    )
    with pytest.raises(PerfParseError, match=r"line 4.*'lots'"):
        parse_interval_csv(text)
    with pytest.raises(PerfParseError, match="line 1"):
        parse_interval_csv("garbage,1,,x\n")


def test_parser_drops_a_final_line_cut_short():
    text = "     0.2,5,,page-faults,1,100.00,,\n     0.4,7,,page-fa"
    assert [s.value for s in parse_interval_csv(text)] == [5.0]


def test_error_reason_is_perfs_own_words():
    stderr = (
        "event syntax error: 'task-clock,power/energy-pkg/'\n"
        "                     \\___ Cannot find PMU `power'. Missing kernel support?\n"
        "Run 'perf list' for a list of valid events\n\n Usage: perf stat [<options>]\n"
    )
    assert error_reason(stderr) == "Cannot find PMU `power'. Missing kernel support?"


def test_default_candidates_cover_hardware_and_software():
    for event in ("instructions", "cycles", "cache-misses", "LLC-loads", "task-clock"):
        assert event in DEFAULT_EVENTS


FAKE_PERF = r"""#!/bin/bash
echo "$*" >> "$FAKE_PERF_LOG"
if [ "$1" = "--version" ]; then echo "perf version fake"; exit 0; fi
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift;; -e) list=$2; shift;; esac; shift
done
case ",$list" in *,bad*)
  echo "event syntax error: '$list'" >&2
  echo "          \___ Cannot find PMU \`bad'. Missing kernel support?" >&2
  exit 129;;
esac
: > "$out"
IFS=, read -ra evs <<< "$list"
for e in "${evs[@]}"; do
  case "$e" in
    hw*) echo "<not supported>,,$e,0,100.00,," >> "$out";;
    cycles) echo "5,,cycles:u,1,100.00,," >> "$out";;
    *) echo "1,,$e,1,100.00,," >> "$out";;
  esac
done
"""


def test_detect_events_logic_with_a_fake_perf(tmp_path: Path, monkeypatch):
    fake = tmp_path / "perf"
    fake.write_text(FAKE_PERF)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_PERF_LOG", str(log))
    support = detect_events(["sw1", "hw1", "cycles", "sw1"], perf=str(fake))
    assert support.supported == ("sw1", "cycles")  # `cycles:u` printed for `cycles`
    assert support.unsupported == {"hw1": "<not supported>"}
    assert len(log.read_text().splitlines()) == 2  # --version + one combined run
    log.unlink()
    support = detect_events(["sw1", "hw1", "bad/x/", "sw2", "sw3", "sw4"], perf=str(fake))
    assert support.supported == ("sw1", "sw2", "sw3", "sw4")
    assert support.unsupported == {
        "hw1": "<not supported>",
        "bad/x/": "Cannot find PMU `bad'. Missing kernel support?",
    }
    runs = [line for line in log.read_text().splitlines() if line.startswith("stat")]
    assert runs[0].endswith("-e sw1,hw1,bad/x/,sw2,sw3,sw4 -- true")
    assert not any(r.endswith("-e sw3 -- true") for r in runs)  # its half ran as a whole


def test_detect_events_without_perf():
    support = detect_events(["task-clock"], perf="/nonexistent/perf")
    assert not support.perf_available and support.reason
    assert support.supported == () and "task-clock" in support.unsupported


def _counts_here(event: str) -> bool:
    done = subprocess.run(
        ["perf", "stat", "-x", ",", "-e", event, "--", "true"], capture_output=True, text=True
    )
    return done.returncode == 0 and "<not supported>" not in done.stderr


@needs_perf
def test_detect_events_on_this_machine():
    support = detect_events(DEFAULT_EVENTS)
    assert support.perf_available
    assert "task-clock" in support.supported
    assert set(support.supported) | set(support.unsupported) == set(DEFAULT_EVENTS)
    if _counts_here("instructions"):
        assert "instructions" in support.supported
    else:
        assert support.unsupported["instructions"] == "<not supported>"


@needs_perf
def test_detect_events_falls_back_per_event_when_perf_refuses_the_list():
    support = detect_events(["task-clock", "nosuchpmu/xyz/", "context-switches"])
    assert support.supported == ("task-clock", "context-switches")
    assert "nosuchpmu" in support.unsupported["nosuchpmu/xyz/"]


def test_perfstat_validates_everything_at_once():
    with pytest.raises(ValueError, match=r"(?s)events.*pids.*interval_ms"):
        PerfStat([], pids=[0], interval_ms=5)


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@needs_perf
def test_perfstat_system_wide_start_burn_stop():
    perf = PerfStat(["task-clock", "context-switches"], interval_ms=100)
    spawned = time.time()
    with perf:
        pid = perf._proc.pid if perf._proc else 0
        _burn(0.35)
    samples = parse_interval_csv(perf.output)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    clock = [s for s in samples if s.event == "task-clock"]
    assert len(clock) >= 3 and all(s.status == OK for s in clock)
    assert perf.started_at is not None and spawned - 0.1 < perf.started_at < spawned + 1.0
    assert perf.stop() == perf.output  # idempotent


@needs_perf
def test_perfstat_attached_to_a_child_counts_its_cpu():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile time.process_time() < 0.4: pass"]
    )
    perf = PerfStat(["task-clock"], pids=[child.pid], interval_ms=100)
    try:
        perf.start()
        child.wait(timeout=10)
        samples = parse_interval_csv(perf.stop())
    finally:
        child.kill()
        perf.close()
    busy_ms = sum(s.value or 0.0 for s in samples if s.event == "task-clock")
    assert busy_ms > 300


@needs_perf
def test_perfstat_never_outlives_an_exception():
    perf = PerfStat(["task-clock"], interval_ms=100)
    with pytest.raises(RuntimeError), perf:
        raise RuntimeError("job failed")
    assert not perf.running


@needs_perf
def test_perf_stops_when_its_owner_is_killed():
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from pipetune.telemetry.perf_stat import PerfStat\n"
            "perf = PerfStat(['task-clock'], interval_ms=100).start()\n"
            "print(perf._proc.pid, perf._workdir, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    pid, workdir = owner.stdout.readline().split()
    perf_pid = int(pid)
    owner.wait(timeout=10)
    assert owner.returncode == -9  # no finalizer, no atexit: only the pipe is left
    assert gone_within(perf_pid, 5.0)
    shutil.rmtree(workdir)  # left behind: its owner died without cleaning up


@needs_perf
def test_perfstat_reports_a_perf_failure():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    perf = PerfStat(["task-clock"], pids=[child.pid], interval_ms=100).start()
    deadline = time.monotonic() + 5
    while perf.running and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(PerfError, match="perf exited"):
        perf.stop()
