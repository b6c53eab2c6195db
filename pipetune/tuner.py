"""The tuner: the one place that wires search, probing plans, a backend, the journal, the store
and progress together. Every fact is journaled before it is acted on, so a run killed at any
point is continued by `--resume` without re-running finished trials or epochs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune import __version__
from pipetune.backends.base import Backend
from pipetune.config import TuningConfig, parse_config
from pipetune.contract import checkpoint_epochs
from pipetune.errors import ResumeError, SegmentFailed
from pipetune.journal import (
    JOURNAL_NAME,
    Journal,
    RunState,
    TrialState,
    read_events,
    segment_event_fields,
)
from pipetune.probing.candidates import (
    default_setting,
    live_parameters,
    probe_budget,
    probe_candidates,
    widest_setting,
)
from pipetune.probing.plan import FixedPlan, PipelinedPlan, TrialPlan, epochs_done
from pipetune.progress import Progress
from pipetune.recognition.service import RecognitionService
from pipetune.records import (
    ApplyMode,
    Decision,
    Energy,
    EpochReport,
    Mode,
    Pause,
    Role,
    SegmentRecord,
    SegmentRequest,
    SegmentResult,
    SettingSource,
    SystemSetting,
)
from pipetune.results import run_summary, trial_summary, write_results
from pipetune.search import HyperparameterSearch, Suggestion
from pipetune.store import schema
from pipetune.store.base import Store

SNAPSHOT_NAME = "config.json"


class Interrupted(Exception):
    """The run was stopped (Ctrl-C / SIGTERM); it can be continued with --resume."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        super().__init__(f"interrupted; continue with: pipetune --resume {run_dir}")


@dataclass
class RunPaths:
    run_dir: Path

    @property
    def journal(self) -> Path:
        return self.run_dir / JOURNAL_NAME

    def trial_dir(self, trial_id: str) -> Path:
        return self.run_dir / "trials" / trial_id


def new_run_dir(config: TuningConfig) -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    run_dir = config.runs_dir / run_id
    run_dir.mkdir(parents=True)
    snapshot = {"source": str(config.source), "pipetune": config.raw, "app": config.raw_app}
    (run_dir / SNAPSHOT_NAME).write_text(json.dumps(snapshot, indent=2) + "\n")
    return run_dir


def load_snapshot(run_dir: Path) -> TuningConfig:
    """The config a run started with (the files on disk may have changed since)."""
    path = run_dir / SNAPSHOT_NAME
    if not path.is_file():
        raise ResumeError(f"{run_dir} has no {SNAPSHOT_NAME}: not a PipeTune run directory")
    snap = json.loads(path.read_text())
    return parse_config(snap["pipetune"], Path(snap["source"]), raw_app=snap["app"])


class Tuner:
    def __init__(
        self,
        config: TuningConfig,
        mode: Mode,
        backend: Backend,
        store: Store,
        progress: Progress,
        run_dir: Path,
        meter_description: str,
        recognition: RecognitionService | None = None,
        *,
        configs: list[dict[str, Any]] | None = None,
        oracle: Callable[[dict[str, Any]], SystemSetting] | None = None,
        durable: bool = True,
    ) -> None:
        """`configs`: search only these hyperparameter configurations (a replay's recorded ones).
        `oracle`: the best setting of a configuration, known up front (required in oracle mode).
        `durable=False`: no fsync per journal event (replays are recomputed, not resumed)."""
        if mode is Mode.ORACLE and oracle is None:
            raise ValueError("oracle mode needs an oracle: the best setting per configuration")
        self.config = config
        self.mode = mode
        self.backend = backend
        self.store = store
        self.progress = progress
        self.paths = RunPaths(run_dir)
        self.meter_description = meter_description
        self.recognition = recognition if mode is Mode.PIPETUNE else None
        self.default = default_setting(config.system_parameters)
        self.oracle = oracle
        self.durable = durable
        self.search = HyperparameterSearch(
            config.hyperparameters,
            config.search.sampler,
            config.search.seed,
            config.system_parameters if mode is Mode.V2 else (),
            configs,
        )
        self.planned = self.search.planned_trials(config.search.trials)
        self.state = RunState()
        self.plans: dict[str, TrialPlan] = {}
        self.journal: Journal | None = None

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> dict[str, Any]:
        """Run (or continue) every trial; return the summary written to summary.json."""
        resuming = self.paths.journal.exists()
        if resuming:
            self.state = RunState.replay(read_events(self.paths.journal))
            if self.state.mode != self.mode.value:
                raise ResumeError(
                    f"run was started in mode {self.state.mode!r}, not {self.mode.value!r}"
                )
        self.journal = Journal(self.paths.journal, self.durable)
        if resuming:
            self._journal("run_resumed")
        else:
            self.state.apply(
                self._journal(
                    "run_started",
                    run_id=self.paths.run_dir.name,
                    mode=self.mode.value,
                    planned_trials=self.planned,
                    version=__version__,
                    recognition=self.recognition is not None,
                )
            )
        try:
            for number in range(self.planned):
                self._trial(number)
        except KeyboardInterrupt:
            self.backend.stop()
            self._journal("run_interrupted")
            self._write("interrupted")
            raise Interrupted(self.paths.run_dir) from None
        finally:
            self.backend.close()  # an idle process kept for a next segment
            self.store.close()
        self.state.apply(self._journal("run_finished"))
        summary = self._write("finished")
        self.journal.close()
        return summary

    def _trial(self, number: int) -> None:
        trial_id = f"t{number:03d}"
        known = self.state.trials.get(trial_id)
        suggestion = self.search.ask()
        if self.oracle is not None and self.mode is Mode.ORACLE:
            suggestion = Suggestion(
                suggestion.number,
                suggestion.hyperparameters,
                self.oracle(suggestion.hyperparameters),
            )
        if known is not None:
            suggestion = self._check_replay(known, suggestion)
            if known.status != "running":
                self.search.tell(number, known.accuracy)
                self.plans[trial_id] = self._plan(suggestion)
                apply_recognition(known, self.plans[trial_id])  # its summary says why
                return
        plan = self.plans[trial_id] = self._plan(suggestion)
        if known is None:
            checkpoint = self.paths.trial_dir(trial_id) / "checkpoint"
            self.state.apply(
                self._journal(
                    "trial_started",
                    trial=trial_id,
                    number=number,
                    hyperparameters=suggestion.hyperparameters,
                    checkpoint=str(checkpoint),
                    system=suggestion.system.as_dict() if suggestion.system else None,
                )
            )
        trial = self.state.trials[trial_id]
        if known is not None:
            stop_orphans(trial.checkpoint)
            self._reconcile_checkpoint(trial)
        apply_recognition(trial, plan)
        self.progress.trial_started(trial_id, number, self.planned, trial.hyperparameters)
        accuracy = self._run_segments(trial, plan)
        self.search.tell(number, accuracy)
        self.progress.trial_finished(self._trial_summary(trial))
        self._write("running")

    def _run_segments(self, trial: TrialState, plan: TrialPlan) -> float | None:
        while (planned := plan.next_segment(trial.segments)) is not None:
            index = len(trial.segments)
            process = max((s.process for s in trial.segments), default=0) + 1
            seg_dir = self.paths.trial_dir(trial.trial_id)
            request = SegmentRequest(
                trial_id=trial.trial_id,
                setting=planned.setting,
                epochs=planned.epochs,
                role=planned.role,
                hyperparameters=trial.hyperparameters,
                checkpoint_dir=trial.checkpoint,
                log_path=str(seg_dir / f"segment-{index:02d}.log"),
                profile=index == 0,  # the trial's first epoch is its profiling epoch
                decide_after=planned.decide_after,
                launch=planned.launch,
            )
            self._journal(
                "segment_started",
                trial=trial.trial_id,
                index=index,
                process=process,
                setting=planned.setting.as_dict(),
                launch=planned.launch.as_dict() if planned.launch else None,
                role=planned.role.value,
                epochs=planned.epochs,
                why=planned.why,
            )
            self._note_restart(trial, planned.setting, process)
            self.progress.segment_started(
                planned.setting, planned.role, epochs_done(trial.segments) + 1, planned.epochs
            )
            started = time.monotonic()
            pending: list[SegmentRecord] = []  # this process's stints so far, for the plan
            decide = self._decider(trial, plan, index, process, pending)
            try:
                result = self.backend.run_segment(request, self._on_epoch(trial), decide)
            except SegmentFailed as exc:
                failed = SegmentRecord(
                    index,
                    planned.setting,
                    planned.role,
                    (),
                    time.monotonic() - started,
                    Energy.zero(),
                    str(exc),
                    process=process,
                )
                self._record_segment(trial, failed, "segment_failed")
                self.progress.segment_failed(planned.setting, f"{exc} (log: {request.log_path})")
                if plan.can_continue_after(failed, trial.segments[:-1]):
                    continue
                self.state.apply(
                    self._journal("trial_failed", trial=trial.trial_id, error=str(exc))
                )
                return None
            if not self._record_result(trial, plan, index, process, result):
                return None
            if index == 0 and self.recognition is not None and trial.recognition is None:
                self._recognize(trial, plan)
        accuracy = sorted(
            (e for s in trial.segments if s.ok for e in s.epochs), key=lambda e: e.epoch
        )[-1].accuracy
        skipped = plan.not_probed(trial.segments)
        if skipped:  # candidates left out (restart ones that could not pay, or no epochs left)
            self._journal("not_probed", trial=trial.trial_id, candidates=skipped)
        self.state.apply(self._journal("trial_done", trial=trial.trial_id, accuracy=accuracy))
        if self.recognition is not None and trial.segments:
            obs = self.recognition.observation(trial.hyperparameters, trial.segments[0])
            note = self.recognition.learn(obs, plan.probes_for_choice(trial.segments))
            self._journal("learned", trial=trial.trial_id, note=note)
        return accuracy

    def _record_result(
        self, trial: TrialState, plan: TrialPlan, index: int, process: int, result: SegmentResult
    ) -> bool:
        """Journal each stint of a finished process as a segment; False if the trial failed."""
        notes = {k: v for k, v in result.extra.items() if k not in ("power", "profile", "startup")}
        power = result.extra.get("power")
        for i, record in enumerate(segment_records(index, process, result)):
            if i > 0:
                notes = {"continued": f"in process {process} after segment {record.index - 1}"}
                power = None  # the whole process's samples went with its first part
            kind = "segment_done" if record.ok else "segment_failed"
            self._record_segment(trial, record, kind, power, notes)
            if record.ok:
                continue
            self.progress.segment_failed(record.setting, record.error or "")
            if not plan.can_continue_after(record, trial.segments[:-1]):
                error = record.error or "failed"
                self.state.apply(self._journal("trial_failed", trial=trial.trial_id, error=error))
                return False
        return True

    def _note_restart(self, trial: TrialState, setting: SystemSetting, process: int) -> None:
        """A new process of a trial at a different setting than the last one ran: a restart."""
        last = trial.segments[-1] if trial.segments else None
        if last is not None and last.setting != setting:
            epoch = epochs_done(trial.segments)
            self._switch(trial, last.setting, setting, epoch, ApplyMode.RESTART, process)

    def _switch(
        self,
        trial: TrialState,
        before: SystemSetting,
        after: SystemSetting,
        epoch: int,
        how: ApplyMode,
        process: int,
        why: str = "",
        inside: bool = False,
    ) -> None:
        """A change of setting after `epoch`, or inside it (after a window of iterations)."""
        self._journal(
            "switch",
            trial=trial.trial_id,
            epoch=epoch,
            how=how.value,
            **{"from": before.as_dict(), "to": after.as_dict()},
            process=process,
            **({"inside_epoch": True} if inside else {}),
        )
        because = f" ({why})" if why else ""
        where = f"inside epoch {epoch}" if inside else f"after epoch {epoch}"
        self.progress.note(f"{trial.trial_id}: {before} → {after} {where}: {how}{because}")

    # ------------------------------------------------------------------ helpers

    def _plan(self, suggestion: Suggestion) -> TrialPlan:
        epochs = self.config.search.epochs
        if self.mode is Mode.V1:
            return FixedPlan(epochs, self.default, SettingSource.DEFAULT)
        if self.mode is Mode.V2:
            return FixedPlan(epochs, suggestion.system or self.default, SettingSource.SEARCHED)
        if self.mode is Mode.ORACLE:
            return FixedPlan(epochs, suggestion.system or self.default, SettingSource.ORACLE)
        params = self.config.system_parameters
        candidates = probe_candidates(params, self.config.probing.strategy)
        budget = probe_budget(len(candidates), epochs, self.config.probing.budget)
        return PipelinedPlan(
            epochs,
            candidates[:budget],
            self.config.probing,
            live=live_parameters(self.config),
            widest=widest_setting(params),
            may_recognize=self.recognition is not None and self.recognition.available,
        )

    def _decider(
        self,
        trial: TrialState,
        plan: TrialPlan,
        index: int,
        process: int,
        pending: list[SegmentRecord],
    ) -> Callable[[Pause], Decision]:
        """At a pause: recognise (after the profiling epoch), then ask the plan what next."""

        def decide(pause: Pause) -> Decision:
            so_far = SegmentRecord(
                index + len(pending),
                pause.setting,
                pause.role,
                pause.epochs,
                pause.wall_s,
                pause.energy,
                profile=pause.profile,
                process=process,
                window=pause.window,
            )
            pending.append(so_far)
            if so_far.index == 0 and self.recognition is not None and trial.recognition is None:
                self._recognize(trial, plan, so_far)
            try:
                decision = plan.at_pause([*trial.segments, *pending], pause.setting)
            except ValueError as exc:  # e.g. no usable probe to choose from: stop there
                decision = Decision(None, why=f"cannot decide ({exc}): stopping after the probe")
            to = decision.setting.as_dict() if decision.setting else None
            self.state.apply(
                self._journal(
                    "decision",
                    trial=trial.trial_id,
                    index=so_far.index,
                    go_on=decision.go_on,
                    to=to,
                    role=decision.role.value,
                    why=decision.why,
                    **({"iterations": decision.iterations} if decision.iterations else {}),
                )
            )
            epoch, inside = 0, False
            if pause.epochs:
                epoch = pause.epochs[-1].epoch
            elif pause.window is not None:  # after a window that ended inside an epoch
                epoch, inside = pause.window.epoch, True
            if decision.setting is not None and decision.setting != pause.setting:
                how, why = ApplyMode.LIVE, decision.why
                self._switch(
                    trial, pause.setting, decision.setting, epoch, how, process, why, inside
                )
            elif decision.go_on:
                self.progress.note(f"{trial.trial_id}: {decision.why}")
            return decision

        return decide

    def _recognize(
        self, trial: TrialState, plan: TrialPlan, first: SegmentRecord | None = None
    ) -> None:
        """After the profiling epoch: a confident hit skips the remaining probes."""
        assert self.recognition is not None
        obs = self.recognition.observation(trial.hyperparameters, first or trial.segments[0])
        result = self.recognition.lookup(obs)
        self.state.apply(self._journal("recognition", trial=trial.trial_id, result=result))
        apply_recognition(trial, plan)
        if result["hit"]:
            self.progress.note(
                f"{trial.trial_id}: recognised (cluster {result.get('cluster')}, distance "
                f"{result.get('distance', 0):.2f} ≤ {result.get('threshold', 0):.2f}): "
                f"{SystemSetting.of(result['setting']).label()}, no probes"
            )
        else:
            self.progress.note(f"{trial.trial_id}: not recognised ({result['reason']}); probing")

    def _on_epoch(self, trial: TrialState) -> Callable[[EpochReport, SystemSetting, Role], None]:
        def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
            self._journal(
                "epoch",
                trial=trial.trial_id,
                setting=setting.as_dict(),
                role=role.value,
                epoch=report.epoch,
                accuracy=report.accuracy,
                duration_s=report.duration_s,
                steady_s=report.steady_s,
            )
            self.progress.epoch(setting, role, report, self.config.search.epochs)

        return on_epoch

    def _record_segment(
        self,
        trial: TrialState,
        seg: SegmentRecord,
        kind: str,
        power: list[Any] | None = None,
        notes: dict[str, Any] | None = None,
    ) -> None:
        fields = segment_event_fields(seg)
        if notes:
            fields["notes"] = notes  # e.g. a profiling error or meter gaps: kept, never fatal
        self.state.apply(self._journal(kind, trial=trial.trial_id, **fields))
        self.store.write(schema.segment_points(self.state.run_id, trial.trial_id, seg, power or []))

    def _check_replay(self, known: TrialState, suggestion: Suggestion) -> Suggestion:
        """On resume the seeded search re-asks each trial; the journal's values always win."""
        if suggestion.hyperparameters != known.hyperparameters:
            self.progress.note(
                f"note: {known.trial_id} was sampled as {known.hyperparameters} in the journal; "
                "keeping the journal's values"
            )
        return Suggestion(known.number, known.hyperparameters, known.system)

    def _reconcile_checkpoint(self, trial: TrialState) -> None:
        """The checkpoint must hold exactly the epochs the journal says were completed."""
        saved = checkpoint_epochs(Path(trial.checkpoint))
        journaled = epochs_done(trial.segments)
        if saved != journaled:
            # A crash between the app saving and the journal recording: start the trial afresh
            # rather than train from weights whose epochs are not accounted for.
            shutil.rmtree(trial.checkpoint, ignore_errors=True)
            reason = f"checkpoint holds {saved} epoch(s), journal {journaled}"
            self.state.apply(self._journal("trial_restarted", trial=trial.trial_id, reason=reason))
            self.progress.note(f"{trial.trial_id}: restarting ({reason})")

    def _trial_summary(self, trial: TrialState) -> dict[str, Any]:
        return trial_summary(trial, self.plans[trial.trial_id], self.default)

    def _write(self, status: str) -> dict[str, Any]:
        trials = [self._trial_summary(t) for t in self.state.ordered() if t.trial_id in self.plans]
        summary = run_summary(self.state, trials, status, self.meter_description)
        # The tuner's own CPU (this process: search, plans, journal, store, recognition), not
        # the jobs': what PipeTune itself costs on top of training.
        times = os.times()
        summary["overhead"] = {"tuner_cpu_s": round(times.user + times.system, 3)}
        write_results(self.paths.run_dir, self.state, summary)
        return summary

    def _journal(self, kind: str, **fields: Any) -> dict[str, Any]:
        assert self.journal is not None
        return self.journal.append(kind, **fields)


def segment_records(index: int, process: int, result: SegmentResult) -> list[SegmentRecord]:
    """The journal's view of a process: one segment record per stint (per setting it ran at,
    in order), the first with the start-up and the profile."""
    return [
        SegmentRecord(
            index + i,
            stint.setting,
            stint.role,
            stint.epochs,
            stint.wall_s,
            stint.energy,
            error=stint.error,
            profile=stint.profile,
            process=process,
            switch_s=stint.switch_s,
            window=stint.window,
            phases=dict(result.extra.get("startup") or {}) if i == 0 else {},
            reused=result.reused if i == 0 else 0,
        )
        for i, stint in enumerate(result.stints)
    ]


def apply_recognition(trial: TrialState, plan: TrialPlan) -> None:
    """A journaled hit settles the plan on the recognised setting (also on resume)."""
    result = trial.recognition
    if result and result.get("hit") and isinstance(plan, PipelinedPlan):
        plan.recognize(SystemSetting.of(result["setting"]), dict(result.get("values") or {}))


def stop_orphans(checkpoint: str) -> None:
    """A crashed tuner can leave its spark-submit running; stop any still using this checkpoint."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "--checkpoint" in cmdline and checkpoint in cmdline:
            try:
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()
            except psutil.NoSuchProcess:
                continue


def describe_plan(config: TuningConfig, mode: Mode) -> list[str]:
    """What a run would do (for --dry-run and the run header)."""
    lines = [
        f"mode {mode.value}: {config.search.trials} trial(s) × {config.search.epochs} epoch(s), "
        f"{config.search.sampler} search (seed {config.search.seed})"
    ]
    default = default_setting(config.system_parameters)
    lines.append(f"default system setting: {default.label() or '(none)'}")
    if mode is Mode.PIPETUNE:
        candidates = probe_candidates(config.system_parameters, config.probing.strategy)
        budget = probe_budget(len(candidates), config.search.epochs, config.probing.budget)
        objective = config.probing.objective.describe()
        lines.append(
            f"probing ({config.probing.strategy}, select by {objective}): "
            + ", ".join(s.label() for s in candidates[:budget])
        )
        if budget < len(candidates):
            skipped = ", ".join(s.label() for s in candidates[budget:])
            lines.append(f"  not probed (budget {budget} epoch(s)): {skipped}")
        live = live_parameters(config)
        modes = ", ".join(
            f"{p.name} {'live' if p.name in live else 'restart'}" for p in config.system_parameters
        )
        lines.append(f"applied: {modes or '(no system parameters)'}")
        if config.probing.continuation:
            lines.append(
                "in place: one process per trial while only live parameters change; a probe "
                "whose setting is chosen trains on without a restart"
            )
        probing = config.probing
        windows = probing.window == "iterations" and probing.live and bool(live)
        if windows:
            lines.append(
                f"window probes: after a warm-up epoch at the widest live values, each live "
                f"candidate over ≤ {probing.window_max_share:.0%} of an epoch "
                f"({probing.window_warmup} warm-up + ≥ {probing.window_min} measured iterations, "
                f"±{probing.window_error:.0%} target); the default stays unless a candidate is "
                f"faster with {probing.window_confidence:.0%} confidence"
            )
        if any(p.name not in live for p in config.system_parameters):
            lines.append(
                "restart candidates: not probed (window probes are for live parameters)"
                if windows
                else f"restart candidates: probed {probing.restart_probes} "
                f"(assumed gain {probing.restart_gain:.0%} of an epoch)"
            )
    if mode is Mode.ORACLE:
        lines.append("oracle: each trial runs at its configuration's best setting in the trace")
    lines.append(f"app {config.app.name}: {config.app.script} on {config.app.master}")
    return lines
