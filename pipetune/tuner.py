"""The tuner: the run's lifecycle. It asks the search for each trial, gives the trial a plan,
and has the trial runner run it; the run recorder journals every fact before it is acted on,
so a run killed at any point is continued by `--resume` without re-running finished trials or
epochs.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune import __version__
from pipetune.backends.base import Backend
from pipetune.config import TuningConfig, parse_config
from pipetune.errors import ResumeError
from pipetune.journal import JOURNAL_NAME, read_events
from pipetune.probing.candidates import (
    default_setting,
    live_parameters,
    probe_budget,
    probe_candidates,
    widest_setting,
)
from pipetune.probing.plan import FixedPlan, PipelinedPlan, TrialPlan
from pipetune.progress import Progress
from pipetune.recognition.service import RecognitionService
from pipetune.records import Mode, SettingSource, SystemSetting
from pipetune.results import run_summary, trial_summary, write_results
from pipetune.resume import checkpoint_mismatch, stop_orphans
from pipetune.run_events import (
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    TrialRestarted,
    TrialStarted,
)
from pipetune.run_recorder import ProgressFeed, RunRecorder, StoreFeed
from pipetune.run_state import RunState, TrialState, TrialStatus
from pipetune.search import HyperparameterSearch, Suggestion
from pipetune.store.base import Store
from pipetune.trial_runner import TrialRunner

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
        self.plans: dict[str, TrialPlan] = {}
        self.state = RunState()  # the run's, as journaled (complete once `run` returns)

    def run(self) -> dict[str, Any]:
        """Run (or continue) every trial; return the summary written to summary.json."""
        recorder = self._open_recorder()
        self.state = recorder.state
        runner = TrialRunner(recorder, self.backend, self.recognition)
        try:
            for number in range(self.planned):
                self._trial(recorder, runner, number)
        except KeyboardInterrupt:
            self.backend.stop()
            recorder.record(RunInterrupted())
            self._write(recorder.state, "interrupted")
            raise Interrupted(self.paths.run_dir) from None
        finally:
            self.backend.close()  # an idle process kept for a next segment
            self.store.close()
        recorder.record(RunFinished())
        summary = self._write(recorder.state, "finished")
        recorder.close()
        return summary

    def _open_recorder(self) -> RunRecorder:
        """The recorder of a new run, or of the journaled one this run continues."""
        resuming = self.paths.journal.exists()
        state = RunState.replay(read_events(self.paths.journal)) if resuming else RunState()
        if resuming and state.mode != self.mode.value:
            raise ResumeError(f"run was started in mode {state.mode!r}, not {self.mode.value!r}")
        recorder = RunRecorder(self.paths.journal, state, self.durable)
        recorder.listeners += [
            StoreFeed(self.store),
            ProgressFeed(self.progress, self.config.search.epochs),
        ]
        if resuming:
            recorder.record(RunResumed())
        else:
            run_id = self.paths.run_dir.name
            recognition = self.recognition is not None
            started = RunStarted(run_id, self.mode.value, self.planned, __version__, recognition)
            recorder.record(started)
        return recorder

    def _trial(self, recorder: RunRecorder, runner: TrialRunner, number: int) -> None:
        trial_id = f"t{number:03d}"
        known = recorder.state.trials.get(trial_id)
        suggestion = self._suggest(known)
        plan = self.plans[trial_id] = self._plan(suggestion)
        if known is not None and known.status is not TrialStatus.RUNNING:
            self.search.tell(number, known.accuracy)  # finished before the resume
            return
        if known is None:
            checkpoint = self.paths.trial_dir(trial_id) / "checkpoint"
            system = suggestion.system
            hyper = suggestion.hyperparameters
            recorder.record(TrialStarted(trial_id, number, hyper, str(checkpoint), system))
        trial = recorder.state.trials[trial_id]
        if known is not None:
            self._continue(recorder, trial)
        self.progress.trial_started(trial_id, number, self.planned, trial.hyperparameters)
        accuracy = runner.run(trial, plan, self.paths.trial_dir(trial_id))
        self.search.tell(number, accuracy)
        self.progress.trial_finished(self._trial_summary(trial))
        self._write(recorder.state, "running")

    def _suggest(self, known: TrialState | None) -> Suggestion:
        """The next trial's configuration: the search's, the oracle's setting for it, and, on
        resume, the journal's values (the seeded search re-asks each trial; the journal wins)."""
        suggestion = self.search.ask()
        if self.oracle is not None and self.mode is Mode.ORACLE:
            best = self.oracle(suggestion.hyperparameters)
            suggestion = Suggestion(suggestion.number, suggestion.hyperparameters, best)
        if known is None:
            return suggestion
        if suggestion.hyperparameters != known.hyperparameters:
            self.progress.note(
                f"note: {known.trial_id} was sampled as {known.hyperparameters} in the journal; "
                "keeping the journal's values"
            )
        return Suggestion(known.number, known.hyperparameters, known.system)

    def _continue(self, recorder: RunRecorder, trial: TrialState) -> None:
        """A trial that was running when the run stopped: stop what it left running, and
        start it afresh if its checkpoint does not match the journal."""
        stop_orphans(trial.checkpoint)
        reason = checkpoint_mismatch(trial)
        if reason is not None:
            recorder.record(TrialRestarted(trial.trial_id, reason))
            self.progress.note(f"{trial.trial_id}: restarting ({reason})")

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
        )

    def _trial_summary(self, trial: TrialState) -> dict[str, Any]:
        return trial_summary(trial, self.plans[trial.trial_id], self.default)

    def _write(self, state: RunState, status: str) -> dict[str, Any]:
        trials = [self._trial_summary(t) for t in state.ordered() if t.trial_id in self.plans]
        summary = run_summary(state, trials, status, self.meter_description)
        # The tuner's own CPU (this process: search, plans, journal, store, recognition), not
        # the jobs': what PipeTune itself costs on top of training.
        times = os.times()
        summary["overhead"] = {"tuner_cpu_s": round(times.user + times.system, 3)}
        write_results(self.paths.run_dir, state, summary)
        return summary
