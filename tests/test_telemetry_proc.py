"""ProcCounters against real processes: a child that burns CPU, touches memory, writes a file
and exits while its parent lives on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipetune.telemetry.proc_counters import (
    COUNTERS,
    GAUGES,
    ProcCounters,
    ProcReading,
    rates,
    read_pid,
)

WORKER = textwrap.dedent(
    """
    import os, sys, time
    end = time.process_time() + 0.3  # CPU time: the shared cores may be busy
    while time.process_time() < end:
        pass
    block = bytearray(32 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    with open(sys.argv[1], "wb") as f:
        f.write(b"x" * 1_000_000)
    print(os.getpid(), flush=True)
    time.sleep(0.2)
    """
)


def test_tree_keeps_a_child_that_exited(tmp_path: Path):
    # sh (root) → python worker, which exits while sh sleeps on.
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out.bin"
    root = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" "{script}" "{out}"; sleep 1'],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        counters = ProcCounters(root.pid).start(interval_s=0.05)
        before = counters.read()
        assert root.stdout is not None
        worker = int(root.stdout.readline())
        during = counters.read()
        assert worker in counters.pids()
        time.sleep(0.4)  # the worker has exited; sh (and its sleep) remain
        assert worker not in counters.pids()
        after = counters.stop()
    finally:
        root.kill()
        root.wait()
    assert during.values["proc.threads"] >= 2  # sh + the live worker
    window = after - before
    assert window.values["proc.cpu_user_s"] + window.values["proc.cpu_system_s"] >= 0.25
    assert window.values["proc.minor_faults"] >= 32 * 1024 * 1024 / 4096 * 0.9
    assert window.values["proc.write_chars"] >= 1_000_000
    for key in COUNTERS:  # an exited process never makes a total go down
        assert after.values[key] >= during.values[key]
    per_s = rates(window)
    assert per_s["proc.cpu_user_s"] > 0 and per_s["proc.minor_faults"] > 0
    assert list(per_s) == sorted(per_s) and all(k.startswith("proc.") for k in per_s)


def test_extra_processes_are_included_once():
    counters = ProcCounters(os.getpid(), extra=lambda: [os.getpid()])
    assert counters.pids().count(os.getpid()) == 1
    reading = counters.read()
    assert set(reading.values) == set(COUNTERS) | set(GAUGES)
    assert reading.values["proc.cpu_user_s"] > 0


def test_gone_root_reads_zero():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert read_pid(child.pid) is None
    assert ProcCounters(child.pid).read().values["proc.cpu_user_s"] == 0.0


def test_window_arithmetic_and_rates():
    a = ProcReading(10.0, {"proc.cpu_user_s": 1.0, "proc.threads": 5.0})
    b = ProcReading(12.0, {"proc.cpu_user_s": 2.0, "proc.threads": 7.0})
    window = b - a
    assert window.time_s == 2.0
    assert window.values["proc.cpu_user_s"] == 1.0 and window.values["proc.threads"] == 7.0
    per_s = ProcCounters.rates(window)
    assert per_s["proc.cpu_user_s"] == 0.5 and per_s["proc.threads"] == 7.0
    assert per_s["proc.read_bytes"] == 0.0
    with pytest.raises(ValueError, match="subtract"):
        rates(a - b)
