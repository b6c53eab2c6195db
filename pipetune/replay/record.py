"""`pipetune trace record`: real trials over a grid, written as a trace.

The grid is configurations × system settings: the configurations are the config's search
(its sampler and seed, `count` of them: every combination for a grid sampler), the settings
every combination of `systemParameters` (the default first). Each (configuration, setting) is
one segment of all `search.epochs` epochs, from an empty checkpoint, through the live backend:
the same spark-submit, meter and profiler as a tuning run. The first segment at the default
setting is profiled; its profile is the workload's.

The trace is rewritten (atomically) after every segment, so an interrupted recording loses at
most the segment in flight, and recording again to the same file skips the groups it has. A
failed segment is reported and left out; the trace then lacks that group.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipetune.backends.base import Backend
from pipetune.config import TuningConfig
from pipetune.errors import SegmentFailed
from pipetune.probing.candidates import live_parameters, probe_candidates
from pipetune.records import (
    Decision,
    EpochReport,
    Pause,
    Role,
    SegmentRequest,
    SegmentResult,
    SystemSetting,
)
from pipetune.replay.trace import COLUMNS, Trace, canonical_config
from pipetune.search import HyperparameterSearch


@dataclass(frozen=True)
class GridPlan:
    configs: list[dict[str, Any]]
    settings: list[SystemSetting]
    epochs: int

    @property
    def groups(self) -> int:
        return len(self.configs) * len(self.settings)


def grid_plan(config: TuningConfig, count: int | None = None) -> GridPlan:
    """The configurations and settings a recording covers (see the module doc)."""
    search = HyperparameterSearch(config.hyperparameters, config.search.sampler, config.search.seed)
    wanted = search.planned_trials(count or config.search.trials)
    configs: list[dict[str, Any]] = []
    for number in range(wanted):
        suggestion = search.ask()
        search.tell(number, 0.0)  # no result guides a recording's draws
        if suggestion.hyperparameters not in configs:
            configs.append(suggestion.hyperparameters)
    settings = probe_candidates(config.system_parameters, "grid")
    return GridPlan(configs, settings, config.search.epochs)


def record_trace(
    config: TuningConfig,
    backend: Backend,
    out: Path,
    work_dir: Path,
    *,
    workload: str,
    count: int | None = None,
    plan: GridPlan | None = None,
    say: Callable[[str], None] = print,
) -> Trace | None:
    """Record the grid (`plan`, else the config's `grid_plan`) into `out`, continuing it if
    it exists; the trace, or None if nothing was recorded."""
    plan = plan or grid_plan(config, count)
    rows, done, profile = _recorded(out, workload, plan, say)
    default = plan.settings[0]
    live = ",".join(sorted(live_parameters(config)))
    todo = [
        (c, s)
        for c in plan.configs
        for s in plan.settings
        if (canonical_config(c), s.label()) not in done
    ]
    trace = None
    for index, (hyperparameters, setting) in enumerate(todo):
        key = canonical_config(hyperparameters)
        number = len(done) + index
        request = _group_request(
            plan,
            hyperparameters,
            setting,
            number,
            work_dir / f"group-{number:03d}",
            profile=profile is None and setting == default,
        )
        say(f"[{index + 1}/{len(todo)}] {key} at {setting.label()}: {plan.epochs} epoch(s)")
        try:
            # a pause after every epoch, going on at the same setting (placed again): the
            # overhead of such a pause is what a live switch into this setting costs
            result = backend.run_segment(request, _ignore_epoch, _go_on_pausing)
        except SegmentFailed as exc:
            say(f"  failed, left out of the trace: {exc} (log: {request.log_path})")
            continue
        measured = result.stints[0].profile if result.stints else None
        if profile is None and measured:
            profile = json.dumps(measured, sort_keys=True, separators=(",", ":"))
        rows.extend(group_rows(workload, key, setting, result, live=live))
        trace = _write(rows, workload, profile, out)
        epochs = ", ".join(f"{e.duration_s:.1f}" for e in result.epochs)
        say(f"  start-up {result.stints[0].startup_s:.1f} s, epochs {epochs} s")
    if trace is None and rows:
        trace = _write(rows, workload, profile, out)
    return trace


def _recorded(
    out: Path, workload: str, plan: GridPlan, say: Callable[[str], None]
) -> tuple[list[dict[str, Any]], set[tuple[str, str]], str | None]:
    """What `out` already holds: its rows, the workload's recorded (config, setting) groups,
    and the workload's profile (None: not yet measured). Nothing when there is no `out`."""
    if not out.exists():
        return [], set(), None
    existing = Trace.load(out).frame
    rows: list[dict[str, Any]] = existing.to_dict("records")
    done = {(r["config"], r["setting"]) for r in rows if r["workload"] == workload}
    profile = next((r["profile"] for r in rows if r["workload"] == workload and r["profile"]), None)
    say(f"continuing {out}: {len(done)} of {plan.groups} group(s) already recorded")
    return rows, done, profile


def _group_request(
    plan: GridPlan,
    hyperparameters: dict[str, Any],
    setting: SystemSetting,
    number: int,
    group_dir: Path,
    *,
    profile: bool,
) -> SegmentRequest:
    """The segment that records group `number`: every epoch from an empty checkpoint in a fresh
    `group_dir`, pausing after each epoch (see `_go_on_pausing`)."""
    shutil.rmtree(group_dir, ignore_errors=True)
    group_dir.mkdir(parents=True)
    return SegmentRequest(
        trial_id=f"g{number:03d}",
        setting=setting,
        epochs=plan.epochs,
        role=Role.TRAIN,
        hyperparameters=hyperparameters,
        checkpoint_dir=str(group_dir / "checkpoint"),
        log_path=str(group_dir / "segment.log"),
        profile=profile,
        decide_after=1 if plan.epochs > 1 else 0,
    )


def group_rows(
    workload: str, config: str, setting: SystemSetting, result: SegmentResult, *, live: str = ""
) -> list[dict[str, Any]]:
    """The trace rows of one segment that ran a trial at `setting` from epoch 1.

    The segment paused after every epoch and went on at the same setting, placed again: the
    stints after the first are such continuations and `switch_s` is the median of their
    overheads (0.0 when there are none). `startup_s` is the rest of what was not an epoch.
    `live` is the workload's live parameters ("" for none; see docs/TRACE_FORMAT.md).
    """
    if not result.stints:
        return []
    switches = [stint.startup_s for stint in result.stints[1:]]
    switch_s = statistics.median(switches) if switches else 0.0
    # what a run without those pauses costs outside its epochs: the launch, the first
    # placement, the checkpoint save and teardown (in the last stint)
    startup_s = max(0.0, result.startup_s - switch_s * len(switches))
    return [
        {
            "workload": workload,
            "config": config,
            "setting": setting.label(),
            "epoch": report.epoch,
            "duration_s": report.duration_s,
            "eval_s": report.eval_s,
            "energy_j": report.energy.joules,
            "energy_source": report.energy.source,
            "accuracy": report.accuracy,
            "loss": report.loss,
            "steady_s": report.steady_s,
            "samples": report.samples,
            "startup_s": startup_s,
            "switch_s": switch_s,
            "live": live,
            "profile": None,
            "synthetic": False,
        }
        for report in result.epochs
    ]


def _write(rows: list[dict[str, Any]], workload: str, profile: str | None, out: Path) -> Trace:
    """Every epoch-1 row of the workload carries its profile (one, identical: the format)."""
    for row in rows:
        if row["workload"] == workload:
            row["profile"] = profile if row["epoch"] == 1 else None
    trace = Trace(pd.DataFrame(rows, columns=list(COLUMNS)))
    out.parent.mkdir(parents=True, exist_ok=True)
    trace.save(out)
    return trace


def _ignore_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    return None


def _go_on_pausing(pause: Pause) -> Decision:
    return Decision(pause.setting, pause.role, 1, "recording the cost of a pause")
