"""The trade-offs a report draws, as plain data from summary.json: each finished trial's
accuracy against its time and energy (with the Pareto front), and each probe's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipetune.records import SystemSetting


def label_of(setting: dict[str, Any] | None) -> str:
    """A setting's label ('cores=2,memory=2g'); '-' for none."""
    if not setting:
        return "-"
    return SystemSetting.of(setting).label() or "default"


@dataclass(frozen=True)
class TrialPoint:
    trial: str
    accuracy: float
    time_s: float
    energy_j: float
    energy_source: str
    setting: str  # the chosen one
    best: bool


def trial_points(summary: dict[str, Any]) -> list[TrialPoint]:
    """Every trial that finished with an accuracy, time and energy."""
    best = (summary.get("best") or {}).get("trial")
    points = []
    for t in summary["trials"]:
        time_s, joules = t["time"]["total_s"], t["energy"]["joules"]
        if t["status"] != "done" or t["accuracy"] is None or time_s is None or joules is None:
            continue
        points.append(
            TrialPoint(
                t["id"],
                float(t["accuracy"]),
                float(time_s),
                float(joules),
                t["energy"]["source"],
                label_of(t["system"]["chosen"]),
                t["id"] == best,
            )
        )
    return points


def pareto_front(points: list[TrialPoint], cost: Callable[[TrialPoint], float]) -> list[TrialPoint]:
    """The trials no other beats on both: lower cost and higher accuracy; by cost."""
    front: list[TrialPoint] = []
    for point in sorted(points, key=lambda p: (cost(p), -p.accuracy)):
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return front


@dataclass(frozen=True)
class ProbeBar:
    setting: str
    how: str  # window | live | new process
    epoch_s: float | None  # what the choice compared: an epoch at the probe's warm pace
    energy_j: float | None
    energy_source: str
    chosen: bool
    error: str | None


@dataclass(frozen=True)
class TrialProbes:
    trial: str
    chosen: str
    source: str  # where the choice came from (probed, default, ...)
    probes: list[ProbeBar]


def trial_probes(summary: dict[str, Any]) -> list[TrialProbes]:
    """The trials that probed settings, each probe with its figures; the chosen marked."""
    out = []
    for t in summary["trials"]:
        probes = t["system"]["probes"]
        if not probes:
            continue
        chosen = label_of(t["system"]["chosen"])
        bars = [
            ProbeBar(
                label_of(p.get("setting")),
                str(p.get("how", "")),
                p.get("steady_s") if p.get("steady_s") is not None else p.get("epoch_s"),
                p.get("energy_j"),
                str(p.get("energy_source") or t["energy"]["source"]),
                label_of(p.get("setting")) == chosen,
                p.get("error"),
            )
            for p in probes
            if isinstance(p, dict)
        ]
        out.append(TrialProbes(t["id"], chosen, t["system"]["source"], bars))
    return out
