"""What a probe measured, read from the trial's segment records, with warm-up accounted for.

A probe is one epoch at one setting. Its time is the epoch's *steady* training time (the
pace of its second half, `EpochReport.steady_s`) when the app reports iteration times, else
the whole epoch. Its energy is the epoch's, scaled to that time at the epoch's mean power.

Warm-up: a process gets faster as the JVM compiles its hot code, over more than an epoch
here. Within one process a setting probed later therefore looks better than it is, never
worse. So a candidate that beats the default only by a little (`warmup_margin`) may owe it to
warm-up: the plan then measures the default again, warm, and the latest measurement of each
setting is the one compared (`needs_recheck`, `latest`).
"""

from __future__ import annotations

from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, score, select_best
from pipetune.records import Role, SegmentRecord, SystemSetting


def probe_result(seg: SegmentRecord) -> ProbeResult:
    """One probe record as the selection sees it (failed or without epochs: not ok)."""
    epoch = seg.epochs[0] if seg.ok and seg.epochs else None
    if epoch is None:
        return ProbeResult(seg.setting, None, None, "none", error=seg.error or "no epoch")
    seconds = epoch.steady_s if epoch.steady_s else epoch.duration_s
    joules = epoch.energy.joules
    if epoch.steady_s and epoch.duration_s > 0:
        joules *= epoch.steady_s / epoch.duration_s  # the same mean power over the steady time
    return ProbeResult(seg.setting, seconds, joules, epoch.energy.source, process=seg.process)


def probe_records(history: list[SegmentRecord]) -> list[SegmentRecord]:
    return [s for s in history if s.role is Role.PROBE]


def latest(history: list[SegmentRecord]) -> list[ProbeResult]:
    """Each probed setting once, at its latest measurement, in the order first probed."""
    by_setting: dict[SystemSetting, ProbeResult] = {}
    for seg in probe_records(history):
        result = probe_result(seg)
        if result.ok or seg.setting not in by_setting:
            by_setting[seg.setting] = result
    return list(by_setting.values())


def needs_recheck(
    history: list[SegmentRecord], default: SystemSetting, objective: Objective, margin: float
) -> bool:
    """Whether the best candidate may owe its lead over the default to warm-up alone: it ran
    later in the default's process and beats it by less than `margin`, and the default has
    been measured only once."""
    defaults = [s for s in probe_records(history) if s.setting == default and s.ok]
    if len(defaults) != 1:
        return False
    try:
        best = select_best(latest(history), objective)
    except ValueError:
        return False
    if best.setting == default or best.process != defaults[0].process or not best.process:
        return False
    base = probe_result(defaults[0])
    try:
        relative = score(best, base, objective) / score(base, base, objective)
    except (ValueError, ZeroDivisionError):
        return False
    return relative * (1.0 + margin) > 1.0
