"""How a segment's stints are measured: its epochs, windows, stints, switches and profile.

A running job is measured (`LiveMeter`): energy over windows between marks of its process
tree (backends/lifecycle.py takes a mark at each event), and the profiling epoch's counters.
A replayed one is looked up in its trace instead (pipetune/replay/backend.py).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from pipetune.backends.events import epoch_report, window_report
from pipetune.errors import PipeTuneError
from pipetune.records import Energy, EpochReport, PowerSample, WindowReport
from pipetune.telemetry.energy_source import EnergySource, ExtraProcesses, Mark
from pipetune.telemetry.profiler import EpochProfile, ProfilerSetup


class SegmentMeter(ABC):
    """What each part of one segment cost, as the lifecycle asks at its events."""

    profile: dict[str, Any] | None = None  # the profiling epoch's (JobProfile.to_dict())

    def started(self) -> None:  # noqa: B027 - optional: a meter may measure from launch on
        """The app is ready to train: its first epoch is measured from here."""

    @abstractmethod
    def epoch(self, event: dict[str, Any]) -> EpochReport:
        """An `epoch` event as a report, with its energy (ends the profile window, if open)."""

    @abstractmethod
    def window(self, event: dict[str, Any], warmup: int) -> WindowReport:
        """A `window` event as a report, with its energy since the stint began."""

    @abstractmethod
    def cut(self) -> tuple[float, Energy]:
        """The stint so far: its wall seconds and energy. The next stint starts here."""

    @abstractmethod
    def switch_s(self, paused_at: float) -> float:
        """How long the pause that began at `paused_at` (time.monotonic()) took: the decision,
        the placement, the app applying it."""

    def begin_profile(self) -> None:  # noqa: B027 - optional: no profile by default
        """Profile the next epoch (the trial's first, its profiling epoch)."""

    def close(self) -> None:  # noqa: B027 - optional: nothing to stop by default
        """The job is over: stop measuring; `cut` gives the rest up to here."""

    def notes(self) -> dict[str, Any]:
        """Notes for the result: a profile that failed, windows a meter could not cover."""
        return {}

    def power(self) -> tuple[PowerSample, ...]:
        """The power samples of the segment."""
        return ()


class LiveMeter(SegmentMeter):
    """A running job, measured: the energy source over its processes (the launched process's
    tree, and `others`, e.g. a cluster's executors on this host), and the profiler."""

    def __init__(
        self,
        energy: EnergySource,
        profiler: ProfilerSetup | None,
        root_pid: int,
        others: ExtraProcesses = None,
    ) -> None:
        self.energy = energy.segment(root_pid, others)
        self.profiler = profiler
        self.root_pid = root_pid
        self.others = others
        self.first = self.boundary = self.last = self.energy.mark()
        self.end: Mark | None = None
        self.profiling: EpochProfile | None = None
        self.problems: dict[str, Any] = {}  # profile_error, ...: kept in the notes

    def started(self) -> None:
        self.last = self.energy.mark()

    def epoch(self, event: dict[str, Any]) -> EpochReport:
        now = self.energy.mark()
        if self.profiling is not None:
            self.profile = self._end_profile(self.profiling)
            self.profiling = None
        report = epoch_report(event, self.energy.between(self.last, now))
        self.last = now
        return report

    def window(self, event: dict[str, Any], warmup: int) -> WindowReport:
        now = self.energy.mark()
        return window_report(event, warmup, self.energy.between(self.boundary, now))

    def cut(self) -> tuple[float, Energy]:
        now = self.end or self.energy.mark()
        wall = max(0.0, now.at - self.boundary.at)
        energy = self.energy.between(self.boundary, now)
        self.boundary = now
        return wall, energy

    def switch_s(self, paused_at: float) -> float:
        return time.monotonic() - paused_at

    def begin_profile(self) -> None:
        if self.profiler is None:
            return
        others = self.others
        pids = None if others is None else (lambda: [p.pid for p in others()])
        try:
            self.profiling = EpochProfile(self.profiler, self.root_pid, pids)
        except (PipeTuneError, OSError) as exc:
            self.problems["profile_error"] = str(exc)

    def _end_profile(self, profiling: EpochProfile) -> dict[str, Any] | None:
        """The profile of the epoch just reported; a failure is recorded, never fatal."""
        try:
            return profiling.end().to_dict()
        except (PipeTuneError, OSError, ValueError) as exc:
            self.problems["profile_error"] = str(exc)
            return None

    def close(self) -> None:
        if self.profiling is not None:
            self.profiling.abort()
        self.end = self.energy.close()

    def notes(self) -> dict[str, Any]:
        notes: dict[str, Any] = dict(self.problems)
        if self.energy.fallbacks:
            notes["energy_fallbacks"] = self.energy.fallbacks
        return notes

    def power(self) -> tuple[PowerSample, ...]:
        end = self.end or self.energy.mark()
        return tuple(self.energy.power_series(self.first, end))
