"""PerfStat against the real perf on this machine: counting, scope, and never outliving its
owner."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import psutil
import pytest

from pipetune.telemetry.perf_parse import PerfError, SampleStatus, parse_interval_csv
from pipetune.telemetry.perf_stat import PerfStat
from tests.machine import gone_within

needs_perf = pytest.mark.usefixtures("perf_installed")

OK = SampleStatus.OK


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
