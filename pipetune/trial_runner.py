"""The trial runner: one trial's segments, from its plan, through the backend, to the record.

The plan says what to run next (a pure function of the trial's history); the backend runs it
and asks, at each pause, for a `Decision` that the plan gives; every fact goes through the
run recorder (journal, state, store, progress) before the next step acts on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipetune.backends.base import Backend
from pipetune.errors import SegmentFailed
from pipetune.probing.history import epochs_done
from pipetune.probing.plan import PlannedSegment, TrialPlan
from pipetune.recognition.service import RecognitionService
from pipetune.records import (
    ApplyMode,
    Decision,
    Energy,
    EpochReport,
    Pause,
    Role,
    SegmentRecord,
    SegmentRequest,
    SegmentResult,
    SystemSetting,
)
from pipetune.run_events import (
    DecisionMade,
    Epoch,
    Learned,
    NotProbed,
    Recognition,
    SegmentRecorded,
    SegmentStarted,
    Switch,
    TrialDone,
    TrialFailed,
)
from pipetune.run_recorder import RunRecorder
from pipetune.run_state import TrialState


class TrialRunner:
    def __init__(
        self,
        recorder: RunRecorder,
        backend: Backend,
        recognition: RecognitionService | None,
    ) -> None:
        self.recorder = recorder
        self.backend = backend
        self.recognition = recognition  # None: recognition is off (not PipeTune mode)

    def run(self, trial: TrialState, plan: TrialPlan, trial_dir: Path) -> float | None:
        """Run the trial's remaining segments; its final accuracy, or None if it failed."""
        while (planned := plan.next_segment(trial.history())) is not None:
            if not self._segment(trial, plan, planned, trial_dir):
                return None
        return self._finish(trial, plan)

    def _segment(
        self, trial: TrialState, plan: TrialPlan, planned: PlannedSegment, trial_dir: Path
    ) -> bool:
        """Run one process of the trial; False when the trial failed with it."""
        index = len(trial.segments)
        process = max((s.process for s in trial.segments), default=0) + 1
        request = SegmentRequest(
            trial_id=trial.trial_id,
            setting=planned.setting,
            epochs=planned.epochs,
            role=planned.role,
            hyperparameters=trial.hyperparameters,
            checkpoint_dir=trial.checkpoint,
            log_path=str(trial_dir / f"segment-{index:02d}.log"),
            profile=index == 0,  # the trial's first epoch is its profiling epoch
            decide_after=planned.decide_after,
            launch=planned.launch,
        )
        first_epoch = epochs_done(trial.segments) + 1
        self.recorder.record(
            SegmentStarted(
                trial.trial_id,
                index,
                process,
                planned.setting,
                planned.role,
                planned.epochs,
                first_epoch,
                planned.launch,
                planned.why,
            )
        )
        self._note_restart(trial, planned.setting, process)
        started = time.monotonic()
        pauses = PauseHandler(self, trial, plan, index, process)
        try:
            result = self.backend.run_segment(request, self._on_epoch(trial), pauses)
        except SegmentFailed as exc:
            wall_s = time.monotonic() - started
            failed = SegmentRecord(
                index, planned.setting, planned.role, (), wall_s, Energy.zero(), str(exc)
            )
            return self._record(
                trial, plan, replace(failed, process=process), {"log": request.log_path}
            )
        return self._record_result(trial, plan, index, process, result)

    def _record_result(
        self, trial: TrialState, plan: TrialPlan, index: int, process: int, result: SegmentResult
    ) -> bool:
        """Record each stint of a finished process as a segment; False if the trial failed."""
        notes = dict(result.notes)
        power = result.power
        for i, record in enumerate(segment_records(index, process, result)):
            if i > 0:
                notes = {"continued": f"in process {process} after segment {record.index - 1}"}
                power = ()  # the whole process's samples went with its first part
            if not self._record(trial, plan, record, notes, power):
                return False
            if record.index == 0 and trial.recognition is None:
                self.recognize(trial)
        return True

    def _record(
        self,
        trial: TrialState,
        plan: TrialPlan,
        record: SegmentRecord,
        notes: dict[str, str] | None = None,
        power: tuple[tuple[float, float, str], ...] = (),
    ) -> bool:
        """Record a segment; a failed one ends the trial unless the plan can do without it."""
        before = trial.history()
        self.recorder.record(SegmentRecorded(trial.trial_id, record, notes or {}, power))
        if record.ok or plan.can_continue_after(record, before):
            return True
        self.recorder.record(TrialFailed(trial.trial_id, record.error or "failed"))
        return False

    def _finish(self, trial: TrialState, plan: TrialPlan) -> float:
        epochs = sorted(
            (e for s in trial.segments if s.ok for e in s.epochs), key=lambda e: e.epoch
        )
        accuracy = epochs[-1].accuracy
        history = trial.history()
        skipped = plan.not_probed(history)
        if skipped:  # candidates left out (restart ones that could not pay, or no epochs left)
            self.recorder.record(NotProbed(trial.trial_id, skipped))
        self.recorder.record(TrialDone(trial.trial_id, accuracy))
        if self.recognition is not None and trial.segments:
            obs = self.recognition.observation(trial.hyperparameters, trial.segments[0])
            chosen = plan.chosen(history)[0]
            note = self.recognition.learn(obs, plan.probes_for_choice(history), chosen)
            self.recorder.record(Learned(trial.trial_id, note))
        return accuracy

    def recognize(self, trial: TrialState, first: SegmentRecord | None = None) -> None:
        """After the profiling epoch: a confident hit settles the plan on the job's best
        known setting (the plan reads the journaled answer from the trial's history)."""
        if self.recognition is None:
            return
        profiled = first or trial.segments[0]
        obs = self.recognition.observation(trial.hyperparameters, profiled)
        self.recorder.record(Recognition(trial.trial_id, self.recognition.lookup(obs)))

    def _note_restart(self, trial: TrialState, setting: SystemSetting, process: int) -> None:
        """A new process of a trial at a different setting than the last one ran: a restart."""
        last = trial.segments[-1] if trial.segments else None
        if last is not None and last.setting != setting:
            epoch = epochs_done(trial.segments)
            switch = Switch(
                trial.trial_id, epoch, ApplyMode.RESTART, last.setting, setting, process
            )
            self.recorder.record(switch)

    def _on_epoch(self, trial: TrialState) -> Callable[[EpochReport, SystemSetting, Role], None]:
        def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
            self.recorder.record(
                Epoch(
                    trial.trial_id,
                    setting,
                    role,
                    report.epoch,
                    report.accuracy,
                    report.duration_s,
                    report.steady_s,
                )
            )

        return on_epoch


class PauseHandler:
    """A running process's pauses: record the stint so far, recognise after the profiling
    epoch, and answer with the plan's decision (recorded, with its switch if any)."""

    def __init__(
        self, runner: TrialRunner, trial: TrialState, plan: TrialPlan, index: int, process: int
    ) -> None:
        self.runner = runner
        self.trial = trial
        self.plan = plan
        self.index = index
        self.process = process
        self.pending: list[SegmentRecord] = []  # the process's stints so far

    def __call__(self, pause: Pause) -> Decision:
        so_far = SegmentRecord(
            self.index + len(self.pending),
            pause.setting,
            pause.role,
            pause.epochs,
            pause.wall_s,
            pause.energy,
            profile=pause.profile,
            process=self.process,
            window=pause.window,
        )
        self.pending.append(so_far)
        if so_far.index == 0 and self.trial.recognition is None:
            self.runner.recognize(self.trial, so_far)
        try:
            decision = self.plan.at_pause(self.trial.history(self.pending), pause.setting)
        except ValueError as exc:  # e.g. no usable probe to choose from: stop there
            decision = Decision(None, why=f"cannot decide ({exc}): stopping after the probe")
        self._record(so_far.index, pause, decision)
        return decision

    def _record(self, index: int, pause: Pause, decision: Decision) -> None:
        trial_id = self.trial.trial_id
        self.runner.recorder.record(
            DecisionMade(
                trial_id,
                index,
                decision.go_on,
                decision.setting,
                decision.role,
                decision.why,
                decision.iterations,
                pause.setting,
            )
        )
        if decision.setting is None or decision.setting == pause.setting:
            return
        epoch, inside = 0, False
        if pause.epochs:
            epoch = pause.epochs[-1].epoch
        elif pause.window is not None:  # after a window that ended inside an epoch
            epoch, inside = pause.window.epoch, True
        switch = Switch(
            trial_id,
            epoch,
            ApplyMode.LIVE,
            pause.setting,
            decision.setting,
            self.process,
            inside,
            decision.why,
        )
        self.runner.recorder.record(switch)


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
            phases=dict(result.startup_phases) if i == 0 else {},
            reused=result.reused if i == 0 else 0,
        )
        for i, stint in enumerate(result.stints)
    ]
