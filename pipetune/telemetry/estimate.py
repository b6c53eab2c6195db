"""Energy *estimate* where no meter exists: CPU time of a process tree × watts per core, plus
an idle share over the wall time. Always labelled `estimate`, never shown as a measurement.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from pipetune.records import Energy

SOURCE = "estimate"


@dataclass(frozen=True)
class CpuReading:
    """Cumulative CPU seconds of a process tree at a monotonic time; subtract two for a window."""

    at: float
    cpu_s: float

    def __sub__(self, other: CpuReading) -> CpuReading:
        return CpuReading(self.at - other.at, self.cpu_s - other.cpu_s)


@dataclass(frozen=True)
class CpuPowerModel:
    watts_per_core: float
    idle_watts: float

    def energy(self, window: CpuReading) -> Energy:
        """Joules for a window (a difference of two readings)."""
        return Energy(window.cpu_s * self.watts_per_core + window.at * self.idle_watts, SOURCE)


class ProcessTreeCpu:
    """Tracks the CPU seconds of a root process, its descendants, and extra matched processes.

    Short-lived children vanish with their CPU time, so a background thread samples every
    `interval` seconds and keeps the last value seen per process.
    """

    def __init__(
        self,
        root_pid: int,
        interval: float = 0.5,
        extra: Callable[[], list[psutil.Process]] | None = None,
    ) -> None:
        self._root_pid = root_pid
        self._extra = extra
        self._interval = interval
        self._seen: dict[tuple[int, float], float] = {}  # (pid, create_time) → cpu seconds
        self.history: list[tuple[float, float]] = []  # (unix time, cumulative cpu seconds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProcessTreeCpu:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> CpuReading:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.reading()

    def reading(self) -> CpuReading:
        """Sample now and return the cumulative total."""
        self.sample()
        with self._lock:
            return CpuReading(time.monotonic(), sum(self._seen.values()))

    def power_series(self, model: CpuPowerModel) -> list[tuple[float, float]]:
        """(unix time at the middle of each sampling interval, estimated watts)."""
        with self._lock:
            history = list(self.history)
        series = []
        for (t0, c0), (t1, c1) in itertools.pairwise(history):
            if t1 > t0:
                joules = model.energy(CpuReading(t1 - t0, c1 - c0)).joules
                series.append(((t0 + t1) / 2, joules / (t1 - t0)))
        return series

    def sample(self) -> None:
        for proc in self._processes():
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                cpu = t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            with self._lock:
                self._seen[key] = max(cpu, self._seen.get(key, 0.0))
        with self._lock:
            self.history.append((time.time(), sum(self._seen.values())))

    def _processes(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        try:
            root = psutil.Process(self._root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        if self._extra is not None:
            procs += self._extra()
        return procs

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()


def executor_processes(app_id: str) -> list[psutil.Process]:
    """Standalone-cluster executors of one application (and their Python workers) on this host."""
    found: list[psutil.Process] = []
    if not app_id:
        return found
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "--app-id" in cmdline and app_id in cmdline:
            found.append(proc)
            try:
                found += proc.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
    return found


def executor_groups(app_id: str) -> list[list[int]]:
    """The pids of each executor of `app_id` on this host, sorted by the executor's pid: the
    executor first, then its children (its Python workers). One executor, one group: what a
    placement moves together."""
    executors = {p.pid: p for p in executor_processes(app_id) if _runs_app(p, app_id)}
    groups: list[list[int]] = []
    for pid in sorted(executors):
        try:
            children = executors[pid].children(recursive=True)
        except psutil.NoSuchProcess:
            continue  # ended meanwhile
        groups.append([pid, *(c.pid for c in children if c.pid not in executors)])
    return groups


def _runs_app(proc: psutil.Process, app_id: str) -> bool:
    """An executor itself (`--app-id <app_id>` in its command line), not one of its children."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return False
    return "--app-id" in cmdline and app_id in cmdline
