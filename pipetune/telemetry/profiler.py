"""Profile one epoch of a running segment: perf event rates (where perf counts anything) plus
/proc counters of the job's processes, over the epoch's window only (start-up excluded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from pipetune.errors import PipeTuneError
from pipetune.telemetry.perf_events import detect_events
from pipetune.telemetry.perf_parse import parse_interval_csv
from pipetune.telemetry.perf_stat import PerfStat
from pipetune.telemetry.proc_counters import ProcCounters, ProcReading
from pipetune.telemetry.profile import JobProfile, proc_profile, profile_window

ExtraPids = Callable[[], list[int]] | None

ATTACH_TRIES = 3
ATTACH_WAIT_S = 1.0  # perf fails within milliseconds; counting shows after one interval


@dataclass(frozen=True)
class ProfilerSetup:
    """Which perf events to count (detected once per run) and how often."""

    events: tuple[str, ...]
    unsupported: tuple[str, ...]
    interval_ms: int = 200
    note: str = ""

    @classmethod
    def detect(cls) -> ProfilerSetup:
        support = detect_events()
        note = "" if support.perf_available else f"perf unavailable: {support.reason}"
        return cls(support.supported, tuple(support.unsupported), note=note)


class EpochProfile:
    """One profiling window, begun when the epoch starts and ended when it is reported."""

    def __init__(self, setup: ProfilerSetup, root_pid: int, extra: ExtraPids = None) -> None:
        self._setup = setup
        self._counters = ProcCounters(root_pid, extra).start()
        self._perf: PerfStat | None = None
        if setup.events:
            try:
                self._perf = self._attach()
            except (PipeTuneError, OSError, ValueError):
                self._perf = None  # the /proc half still profiles the epoch
        self._begin_wall = time.time()
        self._begin: ProcReading = self._counters.read()

    def _attach(self) -> PerfStat | None:
        """perf on the job's processes. Spark starts and ends short-lived processes (Python
        workers) all the time; one that ends between listing and attaching makes perf exit,
        so try again with the processes alive then."""
        for _ in range(ATTACH_TRIES):
            pids = [p for p in self._counters.pids() if psutil.pid_exists(p)]
            if not pids:
                return None
            perf = PerfStat(self._setup.events, pids=pids, interval_ms=self._setup.interval_ms)
            perf.start()
            if perf.attached(timeout_s=ATTACH_WAIT_S):
                return perf
            perf.close()
        return None

    def end(self) -> JobProfile:
        end_wall = time.time()
        proc = proc_profile(self._counters.stop() - self._begin)
        if self._perf is None:
            return _with_unsupported(proc, self._setup.unsupported)
        perf = self._perf
        text = perf.stop()
        samples = parse_interval_csv(text)
        counted = profile_window(samples, perf.relative(self._begin_wall), perf.relative(end_wall))
        return counted.merged(proc)

    def abort(self) -> None:
        if self._perf is not None:
            self._perf.close()
        self._counters.stop()


def _with_unsupported(profile: JobProfile, unsupported: tuple[str, ...]) -> JobProfile:
    return JobProfile(profile.features, profile.source, profile.window_s, unsupported)
