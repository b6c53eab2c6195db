"""Choosing the best probed setting: the argmin of a weighted, normalised objective."""

from __future__ import annotations

from dataclasses import dataclass

from pipetune.probing.objective import Objective
from pipetune.records import SystemSetting


@dataclass(frozen=True)
class ProbeResult:
    """One probe epoch's measurements (or its failure)."""

    setting: SystemSetting
    epoch_s: float | None
    energy_j: float | None
    energy_source: str
    error: str | None = None
    process: int = 0  # the trial's process that measured it (0: not known)

    @property
    def ok(self) -> bool:
        return self.error is None and self.epoch_s is not None


def score(probe: ProbeResult, baseline: ProbeResult, objective: Objective) -> float:
    """Weighted sum of each metric relative to the baseline (so seconds and joules mix)."""
    total = 0.0
    for metric, weight in objective.weights.items():
        value = _metric(probe, metric)
        base = _metric(baseline, metric)
        total += weight * (value / base if base > 0 else value)
    return total


def select_best(probes: list[ProbeResult], objective: Objective) -> ProbeResult:
    """The successful probe with the lowest score; ties go to the earliest (the default)."""
    ok = [p for p in probes if p.ok]
    if not ok:
        raise ValueError("no successful probe to choose from")
    baseline = ok[0]
    return min(ok, key=lambda p: score(p, baseline, objective))


def _metric(probe: ProbeResult, metric: str) -> float:
    value = probe.epoch_s if metric == "duration" else probe.energy_j
    if value is None:
        raise ValueError(f"probe {probe.setting} has no {metric} measurement")
    return value
