"""The oracle: the best system setting of a configuration, known up front from a trace.

For each setting the trace recorded for (workload, config), the whole trial's cost if it ran
every epoch there: start-up + Σ(duration + eval) seconds and the matching energy (start-up
energy as the replay backend charges it); `reused`: in a reused process, as the replay charges
one where the trace has its figures (its start-up, and epoch 1 times its ratio). The best is
chosen with probing's own `select_best` and objective, so "best" means what PipeTune's probes
are trying to find. It pays no probes, which makes an oracle run the lower bound for every
strategy replayed on the same trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import SystemSetting
from pipetune.replay.trace import Trace, TraceError, canonical_config


def trial_cost(
    trace: Trace, workload: str, config: str, setting: str, epochs: int, reused: bool = False
) -> ProbeResult:
    """A trial of `epochs` epochs run entirely at `setting`, as a `ProbeResult` of totals;
    `reused`: in a reused process (a new one where the trace has no reuse figures)."""
    rows = trace.epochs(workload, config, setting)
    if len(rows) < epochs:
        return ProbeResult(
            SystemSetting.parse(setting),
            None,
            None,
            "none",
            error=f"the trace has {len(rows)} of the {epochs} epochs",
        )
    first = rows[0]
    rate = first.energy_j / first.wall_s if first.wall_s > 0 else 0.0
    reuse = trace.reuse(workload, config, setting) if reused else None
    if reuse is None:
        seconds = first.startup_s + sum(r.wall_s for r in rows[:epochs])
        joules = first.startup_s * rate + sum(r.energy_j for r in rows[:epochs])
    else:
        warm = reuse.epoch1_ratio
        seconds = reuse.startup_s + first.wall_s * warm + sum(r.wall_s for r in rows[1:epochs])
        joules = reuse.startup_s * rate + first.energy_j * warm
        joules += sum(r.energy_j for r in rows[1:epochs])
    return ProbeResult(SystemSetting.parse(setting), seconds, joules, first.energy_source)


def best_setting(
    trace: Trace,
    workload: str,
    config: str,
    epochs: int,
    objective: Objective,
    default: SystemSetting,
    reused: bool = False,
) -> SystemSetting:
    """The setting with the cheapest whole trial by `objective` (ties: the default);
    `reused`: of trials in a reused process (`trial_cost`)."""
    labels = trace.settings(workload, config)
    ordered = sorted(labels, key=lambda label: label != default.label())  # default first
    costs = [trial_cost(trace, workload, config, label, epochs, reused) for label in ordered]
    try:
        return select_best(costs, objective).setting
    except ValueError as exc:
        raise TraceError(
            f"oracle: no setting of workload {workload!r}, config {config} has {epochs} epochs"
        ) from exc


def oracle_for(
    trace: Trace, workload: str, epochs: int, objective: Objective, default: SystemSetting
) -> Callable[[dict[str, Any]], SystemSetting]:
    """The tuner's oracle hook: hyperparameters → their best setting (memoised)."""
    cache: dict[str, SystemSetting] = {}

    def oracle(hyperparameters: dict[str, Any]) -> SystemSetting:
        key = canonical_config(hyperparameters)
        if key not in cache:
            cache[key] = best_setting(trace, workload, key, epochs, objective, default)
        return cache[key]

    return oracle
