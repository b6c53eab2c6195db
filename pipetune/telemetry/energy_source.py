"""Energy of segment windows: from a real meter when one is configured and works, else the
labelled CPU-time estimate. A window a meter cannot cover (no samples yet, a PDU that stopped
answering) falls back to the estimate for that window only, and says so in its source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from pipetune.records import Energy
from pipetune.telemetry.estimate import CpuPowerModel, CpuReading, ProcessTreeCpu
from pipetune.telemetry.meter import MeterUnavailable, PowerMeter

ExtraProcesses = Callable[[], list[psutil.Process]] | None


@dataclass(frozen=True)
class Mark:
    """A point in a segment: wall-clock time (for meters) and CPU seconds (for the estimate)."""

    at: float
    cpu: CpuReading


class SegmentEnergy:
    """Marks taken during one segment; the energy between any two of them."""

    def __init__(
        self, tree: ProcessTreeCpu, model: CpuPowerModel, meters: list[PowerMeter]
    ) -> None:
        self._tree = tree.start()
        self._model = model
        self._meters = meters
        self.fallbacks: list[str] = []

    def mark(self) -> Mark:
        return Mark(time.time(), self._tree.reading())

    def close(self) -> Mark:
        end = Mark(time.time(), self._tree.stop())
        return end

    def power_series(self, a: Mark, b: Mark, step_s: float = 1.0) -> list[tuple[float, float, str]]:
        """Power samples over [a, b]: (unix time, watts, source). A meter is asked for the energy
        of each `step_s` slice; the estimate differences its CPU-time samples."""
        if not self._meters:
            return [
                (t, w, "estimate")
                for t, w in self._tree.power_series(self._model)
                if a.at <= t <= b.at
            ]
        series = []
        t = a.at
        while t + step_s <= b.at:
            try:
                joules = sum(m.energy(t, t + step_s).joules for m in self._meters)
                series.append((t + step_s / 2, joules / step_s, self._meters[0].source))
            except MeterUnavailable:
                pass  # a gap in the meter's data: no sample rather than a made-up one
            t += step_s
        return series

    def between(self, a: Mark, b: Mark) -> Energy:
        if not self._meters:
            return self._model.energy(b.cpu - a.cpu)
        try:
            total = Energy.zero()
            for meter in self._meters:
                total = total + meter.energy(a.at, b.at)
            return total
        except MeterUnavailable as exc:
            self.fallbacks.append(str(exc))
            return self._model.energy(b.cpu - a.cpu)


class EnergySource:
    """The run's way of measuring energy: zero or more meters (summed), and the estimate."""

    def __init__(
        self,
        model: CpuPowerModel,
        meters: list[PowerMeter] | None = None,
        unavailable: list[str] | None = None,
    ) -> None:
        self.model = model
        self.meters = list(meters or [])
        self.unavailable = list(unavailable or [])  # why each meter tried could not measure

    @property
    def source(self) -> str:
        return self.meters[0].source if self.meters else "estimate"

    def start(self) -> None:
        for meter in self.meters:
            meter.start()

    def stop(self) -> None:
        for meter in self.meters:
            meter.stop()

    def segment(self, root_pid: int, extra: ExtraProcesses = None) -> SegmentEnergy:
        return SegmentEnergy(ProcessTreeCpu(root_pid, extra=extra), self.model, self.meters)

    def describe(self) -> str:
        estimate = (
            f"estimate: CPU seconds of each segment's process tree × "
            f"{self.model.watts_per_core:g} W/core + {self.model.idle_watts:g} W idle share"
        )
        if not self.meters:
            if not self.unavailable:
                return f"{estimate} (powerMeter is 'estimate')"
            return f"{estimate} (no energy meter: {'; '.join(self.unavailable)})"
        measured = " + ".join(m.describe() for m in self.meters)
        return f"{measured} (windows a meter cannot cover fall back to the {estimate})"
