"""The state of a run, folded from its events: trials, their segments, decisions, status.

`RunState.replay` rebuilds it from a journal alone (`--resume`); the run recorder applies each
event as it is recorded. Only the kinds in `RunState.HANDLERS` change the state; the others
(epochs, switches, ...) are facts for the record.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipetune.probing.history import Recognized, TrialHistory
from pipetune.records import SegmentRecord, SystemSetting
from pipetune.run_events import (
    DecisionMade,
    Recognition,
    RunEvent,
    RunFinished,
    RunStarted,
    SegmentRecorded,
    TrialDone,
    TrialFailed,
    TrialRestarted,
    TrialStarted,
    parse_event,
)


class TrialStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class TrialState:
    trial_id: str
    number: int
    hyperparameters: dict[str, Any]
    system: SystemSetting | None
    checkpoint: str
    status: TrialStatus = TrialStatus.RUNNING
    segments: list[SegmentRecord] = field(default_factory=list)
    error: str | None = None
    accuracy: float | None = None
    recognition: dict[str, Any] | None = None  # the look-up after the profiling epoch
    decisions: list[dict[str, Any]] = field(default_factory=list)  # at paused probes

    def history(self, pending: list[SegmentRecord] | None = None) -> TrialHistory:
        """What the trial's plan decides from (with a running process's stints so far)."""
        return TrialHistory([*self.segments, *(pending or [])], Recognized.of(self.recognition))


@dataclass
class RunState:
    run_id: str = ""
    mode: str = ""
    planned_trials: int = 0
    trials: dict[str, TrialState] = field(default_factory=dict)
    finished: bool = False

    @classmethod
    def replay(cls, events: list[dict[str, Any]]) -> RunState:
        """The state after a journal's events (`journal.read_events`)."""
        state = cls()
        for event in events:
            state.apply(parse_event(event))
        return state

    def apply(self, event: RunEvent) -> None:
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def ordered(self) -> list[TrialState]:
        return sorted(self.trials.values(), key=lambda t: t.number)


def _run_started(state: RunState, e: RunStarted) -> None:
    state.run_id, state.mode, state.planned_trials = e.run_id, e.mode, e.planned_trials


def _trial_started(state: RunState, e: TrialStarted) -> None:
    state.trials[e.trial] = TrialState(e.trial, e.number, e.hyperparameters, e.system, e.checkpoint)


def _segment_recorded(state: RunState, e: SegmentRecorded) -> None:
    state.trials[e.trial].segments.append(e.segment)


def _trial_restarted(state: RunState, e: TrialRestarted) -> None:
    trial = state.trials[e.trial]
    trial.segments.clear()
    trial.recognition = None
    trial.decisions.clear()


def _recognition(state: RunState, e: Recognition) -> None:
    state.trials[e.trial].recognition = e.result


def _decision(state: RunState, e: DecisionMade) -> None:
    to = e.to.as_dict() if e.to else None
    entry = {"segment": e.index, "go_on": e.go_on, "to": to, "why": e.why}
    if e.iterations:
        entry["iterations"] = e.iterations
    state.trials[e.trial].decisions.append(entry)


def _trial_done(state: RunState, e: TrialDone) -> None:
    trial = state.trials[e.trial]
    trial.status, trial.accuracy = TrialStatus.DONE, e.accuracy


def _trial_failed(state: RunState, e: TrialFailed) -> None:
    trial = state.trials[e.trial]
    trial.status, trial.error = TrialStatus.FAILED, e.error


def _run_finished(state: RunState, e: RunFinished) -> None:
    state.finished = True


# Each handler takes its own event class; the dict is the dispatch (typed per entry above).
HANDLERS: dict[type[RunEvent], Callable[[RunState, Any], None]] = {
    RunStarted: _run_started,
    TrialStarted: _trial_started,
    SegmentRecorded: _segment_recorded,
    TrialRestarted: _trial_restarted,
    Recognition: _recognition,
    DecisionMade: _decision,
    TrialDone: _trial_done,
    TrialFailed: _trial_failed,
    RunFinished: _run_finished,
}
