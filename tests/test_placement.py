"""Placement (pipetune/placement.py): moving a running job's threads to other CPUs and back,
checked thread by thread from /proc. Never calls `detect_placer` (it removes every stale
`pipetune-*` cpuset, which could be another run's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from pipetune.placement import (
    AffinityPlacer,
    CpusetPlacer,
    PlacementError,
    cpu_list,
    first_cpus,
    parse_cpu_list,
    stray_threads,
    thread_cpus,
)
from tests.machine import gone_within, require_cpuset

THREADS = 3
CHILD = f"""
import threading, time
for _ in range({THREADS}):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-2,5", {0, 1, 2, 5}),
        ("0", {0}),
        ("", set()),
        ("3-3", {3}),
        ("0,2-3\n", {0, 2, 3}),
    ],
)
def test_parse_cpu_list(text: str, cpus: set[int]):
    assert parse_cpu_list(text) == frozenset(cpus)


def test_cpu_list_and_first_cpus():
    assert cpu_list({5, 0, 2}) == "0,2,5"
    assert parse_cpu_list(cpu_list({0, 1, 7})) == {0, 1, 7}
    assert first_cpus((0, 1, 2, 3), 2) == (0, 1)
    assert first_cpus((0, 1), 8) == (0, 1)
    assert first_cpus((4, 5), 0) == (4,)  # at least one CPU


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    """A process with THREADS sleeping threads besides its main one."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 5
        while len(thread_cpus(proc.pid)) < THREADS + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(thread_cpus(proc.pid)) >= THREADS + 1
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def all_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def test_thread_cpus_of_a_process_that_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    assert gone_within(proc.pid, 5)
    assert thread_cpus(proc.pid) == {} and stray_threads([proc.pid], (0,)) == []


def test_affinity_moves_every_thread_and_back(child: subprocess.Popen[str]):
    placer = AffinityPlacer()
    pids = [child.pid]
    assert stray_threads(pids, all_cpus()) == []  # launched on this process's CPUs
    placer.place("test", pids, (0,))
    assert stray_threads(pids, (0,)) == []
    assert set(thread_cpus(child.pid).values()) == {frozenset({0})}
    placer.place("test", pids, all_cpus())
    assert stray_threads(pids, all_cpus()) == []
    placer.release("test")  # nothing to undo


def test_a_placement_that_did_not_hold_is_reported(child: subprocess.Popen[str]):
    cpus = all_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to leave threads off one")
    # the child runs on every CPU: checking it against the first one finds all its threads
    stray = stray_threads([child.pid], cpus[:1])
    assert len(stray) >= THREADS + 1 and {pid for pid, _, _ in stray} == {child.pid}
    with pytest.raises(PlacementError, match=rf"thread\(s\) not on CPUs {cpus[0]} after affinity"):
        AffinityPlacer().check([child.pid], cpus[:1])


def test_cpuset_moves_every_thread_and_back_then_is_removed(child: subprocess.Popen[str]):
    root = require_cpuset()
    placer = CpusetPlacer(root)
    job = f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    group = root / f"pipetune-{job}"
    pids = [child.pid]
    try:
        placer.place(job, pids, (0,))
        assert group.is_dir()
        assert (group / "cpuset.cpus").read_text().strip() == "0"
        assert str(child.pid) in (group / "cgroup.procs").read_text().split()
        assert stray_threads(pids, (0,)) == []
        placer.place(job, pids, all_cpus())
        assert parse_cpu_list((group / "cpuset.cpus").read_text()) == set(all_cpus())
        assert stray_threads(pids, all_cpus()) == []
    finally:
        placer.release(job)
    assert not group.exists()  # the child, still running, went back to the root cpuset
    assert str(child.pid) in (root / "cgroup.procs").read_text().split()
    placer.release(job)  # releasing again is harmless
