"""Offline replay: every strategy on every workload of a trace, with the same seeds and budget.

Per (workload, strategy) over the seeds: tuning time (every segment of every trial), training
time of the chosen configuration at its chosen setting, energy and best accuracy, as medians;
and per seed the ratio to `v1` on the same seed, summarised as median [min–max].

The oracle check: no trial of any strategy may cost less than its configuration's oracle trial
(the cheapest single setting for all its epochs, no probes) by the probing objective; a trial
that ran in a reused process is held to the cheaper of that and the oracle trial in a reused
process. It holds by construction on a noiseless replay, so a violation is a bug, and the run
fails. With noise, a lucky draw can beat the noiseless bound; the check is then reported, not
enforced.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config import TuningConfig
from pipetune.probing.candidates import default_setting
from pipetune.probing.selection import score
from pipetune.replay.oracle import best_setting, trial_cost
from pipetune.replay.runner import STRATEGIES, Outcome, replay_job
from pipetune.replay.trace import Trace, canonical_config

RATIO_METRICS = ("tuning_s", "train_s", "energy_j")
# The summaries round seconds and joules to 3 decimals, so a trial that ran exactly its oracle
# setting can read up to half a unit of the last decimal under the bound. A relative tolerance
# is not enough for short trials (a 3 s trial's rounding is 1.7e-4 of it); credit the rounding.
ROUNDING = 0.0005
TOLERANCE = 1e-9  # relative, for floating-point sums taken in a different order


@dataclass(frozen=True)
class OracleViolation:
    workload: str
    strategy: str
    seed: int
    trial: str
    ratio: float  # the trial's cost relative to its oracle trial, by the objective

    def __str__(self) -> str:
        return (
            f"{self.workload} {self.strategy} seed {self.seed} {self.trial}: "
            f"{self.ratio:.4f} of its oracle trial's cost"
        )


def run_offline(
    trace: Trace,
    config: TuningConfig,
    seeds: Iterable[int],
    *,
    strategies: tuple[str, ...] = STRATEGIES,
    workloads: list[str] | None = None,
    noise: float = 0.0,
    scratch: Path | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every (workload, seed, strategy), seeds outermost-but-one so strategies interleave."""
    outcomes = []
    for workload in workloads or trace.workloads():
        for seed in seeds:
            for strategy in strategies:
                result = replay_job(
                    trace, workload, config, strategy, seed, noise=noise, scratch=scratch
                )
                outcomes.append(result)
                if on_outcome is not None:
                    on_outcome(result)
    return outcomes


def oracle_violations(
    trace: Trace, config: TuningConfig, outcomes: list[Outcome]
) -> list[OracleViolation]:
    """Trials that cost less than their configuration's oracle trial (see module doc)."""
    objective = config.probing.objective
    default = default_setting(config.system_parameters)
    epochs = config.search.epochs
    found = []
    for o in outcomes:
        for trial in o.summary["trials"]:
            if trial["status"] != "done":
                continue
            key = canonical_config(trial["hyperparameters"])
            ratios = []
            for reused in (False, True) if trial.get("reused_processes") else (False,):
                best = best_setting(trace, o.workload, key, epochs, objective, default, reused)
                bound = trial_cost(trace, o.workload, key, best.label(), epochs, reused)
                cost = dataclasses.replace(
                    bound,
                    epoch_s=float(trial["time"]["total_s"]) + ROUNDING,
                    energy_j=float(trial["energy"]["joules"]) + ROUNDING,
                )
                ratios.append(score(cost, bound, objective) / score(bound, bound, objective))
            ratio = max(ratios)  # held to the cheaper bound
            if ratio < 1.0 - TOLERANCE:
                found.append(OracleViolation(o.workload, o.strategy, o.seed, trial["id"], ratio))
    return found


def summarise(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """One row per (workload, strategy): medians, and ratios to v1 per seed."""
    by_key: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        by_key.setdefault((o.workload, o.strategy), []).append(o)
    rows = []
    for (workload, strategy), group in by_key.items():
        v1 = {o.seed: o for o in by_key.get((workload, "v1"), [])}
        row: dict[str, Any] = {
            "workload": workload,
            "strategy": strategy,
            "seeds": len(group),
            "tuning_s": _median(o.tuning_s for o in group),
            "train_s": _median(o.train_s for o in group),
            "energy_j": _median(o.energy_j for o in group),
            "energy_source": ",".join(sorted({o.energy_source for o in group})),
            "best_accuracy": _median(o.best_accuracy for o in group),
            "probe_epochs": _median(o.probe_epochs for o in group),
            "probe_windows": _median(o.probe_windows for o in group),
            "failed_trials": sum(o.failed for o in group),
        }
        for metric in RATIO_METRICS:
            ratios = [
                getattr(o, metric) / getattr(v1[o.seed], metric)
                for o in group
                if o.seed in v1 and getattr(o, metric) and getattr(v1[o.seed], metric)
            ]
            row[f"{metric}_vs_v1"] = _median(ratios)
            row[f"{metric}_vs_v1_min"] = min(ratios) if ratios else None
            row[f"{metric}_vs_v1_max"] = max(ratios) if ratios else None
        accuracy_gap = [
            o.best_accuracy - base
            for o in group
            if o.seed in v1
            and o.best_accuracy is not None
            and (base := v1[o.seed].best_accuracy) is not None
        ]
        row["accuracy_vs_v1"] = _median(accuracy_gap)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of `summarise` rows."""
    head = (
        "| workload | strategy | seeds | tuning s | vs v1 | training s | vs v1 | energy J | vs v1 "
        "| best acc. | Δacc vs v1 | probe epochs | probe windows |"
    )
    lines = [head, "|" + " --- |" * 13]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['strategy']} | {r['seeds']} | {_num(r['tuning_s'])} "
            f"| {_ratio(r, 'tuning_s')} | {_num(r['train_s'])} | {_ratio(r, 'train_s')} "
            f"| {_num(r['energy_j'])} ({r['energy_source']}) | {_ratio(r, 'energy_j')} "
            f"| {_num(r['best_accuracy'], 3)} | {_num(r['accuracy_vs_v1'], 3)} "
            f"| {_num(r['probe_epochs'], 1)} | {_num(r['probe_windows'], 1)} |"
        )
    return "\n".join(lines)


def _ratio(row: dict[str, Any], metric: str) -> str:
    mid, lo, hi = (row[f"{metric}_vs_v1{s}"] for s in ("", "_min", "_max"))
    if mid is None:
        return "–"
    return f"{mid:.2f} [{lo:.2f}–{hi:.2f}]"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _median(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None
