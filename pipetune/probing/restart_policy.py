"""When a restart is worth it: probing a candidate that needs a new process, and switching to
a setting that needs one.

Candidates that differ from the running setting in a restart parameter (memory) cost a
start-up to probe and, if they lose, another one back. Under `restart_probes`
"when-they-can-pay" one is probed only when the epochs left after it, made `restart_gain`
faster, would repay two start-ups. Under `switch` "when-it-pays" a move that needs a restart
is taken only if the remaining epochs at the target, plus a start-up, cost less than staying.
"""

from __future__ import annotations

from pipetune.config_probing import ProbingConfig, RestartProbes
from pipetune.probing.history import Recognized, epochs_done
from pipetune.probing.measure import latest, probe_result
from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import SegmentRecord, SystemSetting


def skip_reason(
    segments: list[SegmentRecord],
    candidate: SystemSetting,
    remaining: int,
    needs: set[str],
    probing: ProbingConfig,
) -> str | None:
    """Why `candidate`, which needs a restart for the parameters `needs`, is not probed, or
    None to probe it."""
    rule = probing.restart_probes
    if rule == RestartProbes.ALWAYS:
        return None
    names = ", ".join(sorted(needs))
    if rule == RestartProbes.NEVER:
        return f"{candidate} needs a restart ({names}); restart_probes is never"
    startup = max((s.startup_s for s in segments if s.ok), default=0.0)
    done = [p for p in latest(segments) if p.ok and p.epoch_s]
    if not done:
        return f"{candidate} needs a restart ({names}) and no probe measured an epoch"
    best_s = min(p.epoch_s for p in done if p.epoch_s)
    gain = (remaining - 1) * best_s * probing.restart_gain
    if gain >= 2 * startup:
        return None
    return (
        f"{candidate} needs a restart ({names}): {remaining - 1} epoch(s) after it, "
        f"{probing.restart_gain:.0%} faster, would save {gain:.0f} s, less than a "
        f"start-up there and back ({2 * startup:.0f} s)"
    )


def keep_reason(
    segments: list[SegmentRecord],
    target: SystemSetting,
    target_probes: list[ProbeResult],
    recognized: Recognized | None,
    epochs: int,
    objective: Objective,
) -> str | None:
    """Why staying at the paused setting (the last segment's) is cheaper than a restart at
    `target`, or None. `target_probes`: what the probes measured at `target`."""
    paused = segments[-1]
    if not paused.ok or not paused.epochs:
        return None
    here = probe_result(paused)
    if recognized is not None:
        target_s = recognized.values.get("epoch_s")
        target_j = recognized.values.get("energy_j")
    else:
        found = [p for p in target_probes if p.setting == target and p.ok]
        if not found:
            return None
        target_s, target_j = found[0].epoch_s, found[0].energy_j
    if target_s is None or here.epoch_s is None:
        return None
    remaining = epochs - epochs_done(segments)
    startup_s = max((s.startup_s for s in segments if s.ok), default=0.0)
    epoch_j = here.energy_j or 0.0
    rate = epoch_j / here.epoch_s if here.epoch_s else 0.0
    stay = ProbeResult(
        paused.setting, remaining * here.epoch_s, remaining * epoch_j, here.energy_source
    )
    move = ProbeResult(
        target,
        startup_s + remaining * target_s,
        startup_s * rate + remaining * target_j if target_j is not None else None,
        here.energy_source,
    )
    try:
        if select_best([stay, move], objective) is move:
            return None
    except ValueError:  # e.g. no energy measurement for an energy objective
        return None
    return (
        f"{remaining} epoch(s) there would not repay a start-up ({startup_s:.0f} s): "
        f"staying at {paused.setting} without a restart"
    )
