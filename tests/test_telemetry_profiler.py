"""EpochProfile against real processes and a real perf: attaching survives a process tree whose
members come and go (Spark's Python workers), as perf itself does not."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
import pytest

from pipetune.telemetry import profiler
from pipetune.telemetry.perf_stat import PerfStat
from pipetune.telemetry.profiler import EpochProfile, ProfilerSetup

needs_perf = pytest.mark.usefixtures("perf_installed")

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


@pytest.fixture
def busy_child():
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    yield child
    child.kill()
    child.wait()


@dataclass
class Rate:
    value: float = 0.0


@contextmanager
def cpu_rate(pid: int) -> Iterator[Rate]:
    """The CPU seconds per second `pid` got over the block (under load, less than a core)."""
    proc = psutil.Process(pid)
    rate, started, before = Rate(), time.monotonic(), sum(proc.cpu_times()[:2])
    yield rate
    rate.value = (sum(proc.cpu_times()[:2]) - before) / (time.monotonic() - started)
    assert rate.value > 0.05, f"the busy child got almost no CPU ({rate.value:.2f} s/s)"


def gone_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@needs_perf
def test_perf_reports_whether_it_attached(busy_child):
    alive = PerfStat(["task-clock"], pids=[busy_child.pid], interval_ms=50).start()
    dead = PerfStat(["task-clock"], pids=[gone_pid()], interval_ms=50).start()
    try:
        assert alive.attached(timeout_s=5.0)
        assert not dead.attached(timeout_s=5.0)
    finally:
        alive.close()
        dead.close()


@needs_perf
def test_a_process_that_ends_before_perf_attaches_does_not_cost_the_profile(
    busy_child, monkeypatch
):
    # The race: a pid is listed as alive, then ends before perf opens its counters. Treating
    # every pid as alive puts the ended one in front of perf, as the race does.
    monkeypatch.setattr(profiler.psutil, "pid_exists", lambda pid: True)
    vanished = gone_pid()
    calls = []

    def extra() -> list[int]:
        calls.append(1)
        return [vanished] if len(calls) == 1 else []

    setup = ProfilerSetup(events=("task-clock", "context-switches"), unsupported=(), interval_ms=50)
    with cpu_rate(busy_child.pid) as rate:
        window = EpochProfile(setup, busy_child.pid, extra)
        time.sleep(0.5)
        profile = window.end()

    assert len(calls) >= 3  # listed for the failed attach, again for the retry, and by /proc
    assert profile.source == "perf+proc"
    # the busy child spins a core, as much of one as the machine gives it: task-clock is in
    # ms per second, the /proc counter in CPU seconds per second
    assert profile.features["task-clock"] == pytest.approx(1000 * rate.value, rel=0.5)
    assert profile.features["proc.cpu_user_s"] == pytest.approx(rate.value, rel=0.5)


@needs_perf
def test_when_perf_never_attaches_the_proc_counters_still_profile(busy_child, monkeypatch):
    monkeypatch.setattr(profiler.psutil, "pid_exists", lambda pid: True)
    vanished = gone_pid()
    setup = ProfilerSetup(events=("task-clock",), unsupported=(), interval_ms=50)
    with cpu_rate(busy_child.pid) as rate:
        window = EpochProfile(setup, busy_child.pid, lambda: [vanished])
        time.sleep(0.3)
        profile = window.end()

    assert "task-clock" not in profile.features
    assert profile.features["proc.cpu_user_s"] == pytest.approx(rate.value, rel=0.5)
