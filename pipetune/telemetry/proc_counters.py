"""Counters of a process tree from /proc: the fallback where perf is missing or blind (VMs
without hardware counters), and a complement where it is not (perf has no I/O bytes).

Per process (root, its descendants, and `extra()`), summed over the tree:

=======================  =====================================  =========================
feature                  source                                 kind
=======================  =====================================  =========================
proc.cpu_user_s          /proc/<pid>/stat utime / CLK_TCK       counter (s)
proc.cpu_system_s        /proc/<pid>/stat stime / CLK_TCK       counter (s)
proc.minor_faults        /proc/<pid>/stat minflt                counter
proc.major_faults        /proc/<pid>/stat majflt                counter
proc.ctx_voluntary       /proc/<pid>/status                     counter
proc.ctx_involuntary     /proc/<pid>/status                     counter
proc.read_bytes          /proc/<pid>/io read_bytes (storage)    counter (bytes)
proc.write_bytes         /proc/<pid>/io write_bytes (storage)   counter (bytes)
proc.read_chars          /proc/<pid>/io rchar (syscalls)        counter (bytes)
proc.write_chars         /proc/<pid>/io wchar (syscalls)        counter (bytes)
proc.threads             /proc/<pid>/stat num_threads           gauge (live processes)
=======================  =====================================  =========================

Counters keep the last value seen per (pid, start time), so a process that exits mid-window
still counts up to its last sample; call `sample()` (or `start()` a sampler thread) often
enough to see short-lived children at least once. Children's times folded into a parent's
cutime/cstime are not used, so nothing is counted twice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

import psutil

PREFIX = "proc."
COUNTERS: tuple[str, ...] = (
    "proc.cpu_user_s",
    "proc.cpu_system_s",
    "proc.minor_faults",
    "proc.major_faults",
    "proc.ctx_voluntary",
    "proc.ctx_involuntary",
    "proc.read_bytes",
    "proc.write_bytes",
    "proc.read_chars",
    "proc.write_chars",
)
GAUGES: tuple[str, ...] = ("proc.threads",)

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_STATUS_KEYS = {
    "voluntary_ctxt_switches": "proc.ctx_voluntary",
    "nonvoluntary_ctxt_switches": "proc.ctx_involuntary",
}
_IO_KEYS = {
    "read_bytes": "proc.read_bytes",
    "write_bytes": "proc.write_bytes",
    "rchar": "proc.read_chars",
    "wchar": "proc.write_chars",
}


@dataclass(frozen=True)
class ProcReading:
    """Totals of a process tree at monotonic `time_s`; `later - earlier` is a window, whose
    `time_s` is its length. In a window, gauges keep the later reading's value."""

    time_s: float
    values: Mapping[str, float]

    def __sub__(self, other: ProcReading) -> ProcReading:
        values = {k: self.values.get(k, 0.0) - other.values.get(k, 0.0) for k in COUNTERS}
        values.update({k: self.values.get(k, 0.0) for k in GAUGES})
        return ProcReading(self.time_s - other.time_s, values)


def rates(window: ProcReading) -> dict[str, float]:
    """Counters per second over a window (gauges as they are), keys sorted.

    Raises:
        ValueError: the window is not a positive length of time.
    """
    if window.time_s <= 0:
        raise ValueError(f"window of {window.time_s} s: subtract an earlier reading from a later")
    out = {k: window.values.get(k, 0.0) / window.time_s for k in COUNTERS}
    out.update({k: window.values.get(k, 0.0) for k in GAUGES})
    return dict(sorted(out.items()))


def read_pid(pid: int) -> tuple[float, dict[str, float]] | None:
    """(start time in clock ticks, counters) of one process, or None if it is gone.
    Files that cannot be read (e.g. /proc/<pid>/io of another user's process) count as 0."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # Fields after "(comm)"; comm may contain spaces and parentheses.
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): field n is rest[n - 3].
    values = {
        "proc.minor_faults": float(rest[10 - 3]),
        "proc.major_faults": float(rest[12 - 3]),
        "proc.cpu_user_s": int(rest[14 - 3]) / _CLK_TCK,
        "proc.cpu_system_s": int(rest[15 - 3]) / _CLK_TCK,
        "proc.threads": float(rest[20 - 3]),
    }
    start_ticks = float(rest[22 - 3])
    values.update(_key_values(f"/proc/{pid}/status", ":", _STATUS_KEYS))
    values.update(_key_values(f"/proc/{pid}/io", ":", _IO_KEYS))
    return start_ticks, values


def _key_values(path: str, sep: str, keys: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(sep)
                if name in keys:
                    out[keys[name]] = float(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


class ProcCounters:
    """Sums /proc counters over `root_pid`, its descendants and the pids `extra()` returns."""

    def __init__(self, root_pid: int, extra: Callable[[], list[int]] | None = None) -> None:
        self.root_pid = root_pid
        self._extra = extra
        self._seen: dict[tuple[int, float], dict[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pids(self) -> list[int]:
        found: list[int] = []
        try:
            root = psutil.Process(self.root_pid)
            found = [root.pid, *(c.pid for c in root.children(recursive=True))]
        except psutil.Error:
            pass
        if self._extra is not None:
            found += self._extra()
        return list(dict.fromkeys(found))

    def sample(self) -> float:
        """Read every live process now; returns the total of live threads."""
        threads = 0.0
        for pid in self.pids():
            got = read_pid(pid)
            if got is None:
                continue
            start, values = got
            threads += values.pop("proc.threads")
            with self._lock:
                last = self._seen.setdefault((pid, start), {})
                for k, v in values.items():
                    last[k] = max(v, last.get(k, 0.0))
        return threads

    def read(self) -> ProcReading:
        """Sample now and return the cumulative totals (every process ever seen)."""
        threads = self.sample()
        now = time.monotonic()
        with self._lock:
            totals = dict.fromkeys(COUNTERS, 0.0)
            for last in self._seen.values():
                for k, v in last.items():
                    totals[k] += v
        totals["proc.threads"] = threads
        return ProcReading(now, totals)

    rates = staticmethod(rates)

    def start(self, interval_s: float = 0.5) -> ProcCounters:
        """Sample in a daemon thread every `interval_s`, to catch short-lived children."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> ProcReading:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.read()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.sample()

    def __enter__(self) -> ProcCounters:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
