"""`pipetune trace record`: real trials over a grid, written as a trace.

The grid is configurations × system settings: the configurations are the config's search
(its sampler and seed, `count` of them: every combination for a grid sampler), the settings
every combination of `systemParameters` (the default first). Each (configuration, setting) is
one segment of all `search.epochs` epochs, from an empty checkpoint, through the live backend:
the same spark-submit, meter and profiler as a tuning run. The first segment at the default
setting is profiled; its profile is the workload's.

Given a second backend that keeps a process idle for the next segment (`reuseProcess`), the
last group of each setting runs there, as a host, and the reuse of its idle process is
measured after it (replay/record_reuse.py): the setting's `reuse_startup_s` and
`reuse_epoch1_ratio`, on every group at it.

The trace is rewritten (atomically) after every group (with its reuse measurement, for a
host), so an interrupted recording loses at most the group in flight, and recording again to
the same file skips the groups it has, and measures the settings that lack reuse figures (in
a host segment of their own, not recorded, when no group is left to record there). A failed
segment is reported and left out; the trace then lacks that group.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from pipetune.replay.record_file import Recording, recorded
from pipetune.replay.record_reuse import (
    ReuseMeasurement,
    host_indices,
    measure_reuse,
    reused_request,
)
from pipetune.replay.trace import Trace, canonical_config
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
    reuse_backend: Backend | None = None,
) -> Trace | None:
    """Record the grid (`plan`, else the config's `grid_plan`) into `out`, continuing it if
    it exists; the trace, or None if nothing was recorded. `backend` runs each group in a new
    process; `reuse_backend`, when given, keeps a process idle for the next segment, and
    measures reuse at each setting (see the module doc)."""
    plan = plan or grid_plan(config, count)
    rec = recorded(out, workload, plan.groups, say)
    done = rec.groups()
    todo = [
        (c, s)
        for c in plan.configs
        for s in plan.settings
        if (canonical_config(c), s.label()) not in done
    ]
    measuring = _ReuseSteps(reuse_backend, plan, rec, work_dir, say)
    measuring.plan_hosts([s for _, s in todo])
    live = ",".join(sorted(live_parameters(config)))
    for index, (hyperparameters, setting) in enumerate(todo):
        key, number = canonical_config(hyperparameters), len(done) + index
        host = measuring.host(index)  # its backend, when this group is a host
        then = ", then one in its idle process" if host else ""
        say(f"[{index + 1}/{len(todo)}] {key} at {setting.label()}: {plan.epochs} epoch(s){then}")
        group_dir = work_dir / f"group-{number:03d}"
        first = rec.profile is None and setting == plan.settings[0]
        request = _group_request(plan, hyperparameters, setting, number, group_dir, profile=first)
        result = _run_group(host or backend, request, say)
        if result is None:
            continue
        measured = result.stints[0].profile if result.stints else None
        if rec.profile is None and measured:
            rec.profile = json.dumps(measured, sort_keys=True, separators=(",", ":"))
        rows = group_rows(workload, key, setting, result, live=live)
        if host is not None:
            rows = measuring.after_host(host, rows, hyperparameters, setting, number)
        rec.rows.extend(rows)
        rec.write()
        epochs = ", ".join(f"{e.duration_s:.1f}" for e in result.epochs)
        say(f"  start-up {result.stints[0].startup_s:.1f} s, epochs {epochs} s")
    measuring.remaining(len(done) + len(todo))
    if rec.trace is None and rec.rows:
        rec.write()
    return rec.trace


class _ReuseSteps:
    """The reuse measurement of each setting (replay/record_reuse.py): after its host group,
    or after a host segment of its own when the setting has no group left to record. Nothing
    without a backend that keeps processes idle."""

    def __init__(
        self,
        backend: Backend | None,
        plan: GridPlan,
        rec: Recording,
        work_dir: Path,
        say: Callable[[str], None],
    ) -> None:
        self.backend = backend
        self.plan = plan
        self.rec = rec
        self.work_dir = work_dir
        self.say = say
        self.tried: set[str] = set()  # settings measured, or that failed, in this recording
        self.supported = True  # False once the app ran a handed-over segment in a new process
        self._hosts: set[int] = set()

    def plan_hosts(self, settings: list[SystemSetting]) -> None:
        """Which of the groups to record (their settings, in order) are hosts."""
        if self.backend is not None:
            self._hosts = host_indices(settings, set(self.rec.reuse))

    def host(self, index: int) -> Backend | None:
        """The backend that keeps processes idle, when group `index` is a host (none once the
        app proved not to wait idle)."""
        return self.backend if index in self._hosts and self.supported else None

    def after_host(
        self,
        backend: Backend,
        rows: list[dict[str, Any]],
        hyperparameters: dict[str, Any],
        setting: SystemSetting,
        number: int,
    ) -> list[dict[str, Any]]:
        """The host group's rows once its idle process was measured: its start-up with its
        process's teardown; none when the host must be left out."""
        measured = self._measure(backend, setting, hyperparameters, number, rows)
        if not measured.host_ok:
            self.say("  its host group is left out with it (its teardown went unmeasured)")
            return []
        for row in rows:
            row["startup_s"] += measured.teardown_s
        return rows

    def remaining(self, number: int) -> None:
        """Measure the settings still without figures that have a recorded group, each after a
        host segment of its own (not recorded: its group is in the trace already)."""
        backend = self.backend
        if backend is None:
            return
        for setting in self.plan.settings:
            label = setting.label()
            recorded = [
                c
                for c in self.plan.configs
                if self.rec.epoch1_wall_s(canonical_config(c), label) is not None
            ]
            measured = label in self.rec.reuse or label in self.tried
            if measured or not recorded or not self.supported:
                continue
            self.say(f"reuse at {label}: a host segment, then one in its idle process")
            host_dir = self.work_dir / f"host-{number:03d}"
            request = _group_request(self.plan, recorded[0], setting, number, host_dir)
            if _run_group(backend, request, self.say) is not None:
                self._measure(backend, setting, recorded[0], number, [])
                self.rec.write()
            number += 1

    def _measure(
        self,
        backend: Backend,
        setting: SystemSetting,
        host_config: dict[str, Any],
        number: int,
        host_rows: list[dict[str, Any]],
    ) -> ReuseMeasurement:
        """One epoch of another configuration (the host's if there is none) in the host's
        idle process, as a share of that configuration's epoch 1 in a new process."""
        label = setting.label()
        self.tried.add(label)
        others = [
            c
            for c in self.plan.configs
            if c != host_config and self.rec.epoch1_wall_s(canonical_config(c), label)
        ]
        config = others[0] if others else host_config
        reference = self.rec.epoch1_wall_s(canonical_config(config), label)
        if reference is None:  # the host's own configuration, not in the trace yet
            reference = next(
                (r["duration_s"] + r["eval_s"] for r in host_rows if r["epoch"] == 1), 0.0
            )
        request = reused_request(config, setting, number, self.work_dir)
        measured = measure_reuse(backend, request, reference)
        if measured.figures is None:
            self.say(f"  reuse at {label} not recorded: {measured.why}")
            self.supported = measured.supported
        else:
            self.rec.reuse[label] = figures = measured.figures
            self.say(
                f"  in the idle process: start-up {figures.startup_s:.1f} s, epoch 1 "
                f"{figures.epoch1_ratio:.2f}x a new process's"
            )
        return measured


def _run_group(
    backend: Backend, request: SegmentRequest, say: Callable[[str], None]
) -> SegmentResult | None:
    """The group's segment, or None when it failed (reported)."""
    try:
        # a pause after every epoch, going on at the same setting (placed again): the
        # overhead of such a pause is what a live switch into this setting costs
        return backend.run_segment(request, _ignore_epoch, _go_on_pausing)
    except SegmentFailed as exc:
        say(f"  failed, left out of the trace: {exc} (log: {request.log_path})")
        return None


def _group_request(
    plan: GridPlan,
    hyperparameters: dict[str, Any],
    setting: SystemSetting,
    number: int,
    group_dir: Path,
    *,
    profile: bool = False,
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


def _ignore_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    return None


def _go_on_pausing(pause: Pause) -> Decision:
    return Decision(pause.setting, pause.role, 1, "recording the cost of a pause")
