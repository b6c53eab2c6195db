"""The run's events, typed: what the journal records, one class per kind.

Each event is a frozen dataclass with its journal `KIND` and its JSON fields (`fields()`);
`parse_event` reads one back from a journal line. The JSON layout is the journal's format
(docs/ARCHITECTURE.md, "The journal"): runs journaled by an earlier version read the same.
Events are facts; `run_state.RunState` folds the ones that change the state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipetune.errors import ResumeError
from pipetune.journal import segment_event_fields, segment_from_event
from pipetune.records import ApplyMode, Role, SegmentRecord, SystemSetting

JSON = dict[str, Any]


def _setting(value: JSON | None) -> SystemSetting | None:
    return SystemSetting.of(value) if value else None


def _dict(setting: SystemSetting | None) -> JSON | None:
    return setting.as_dict() if setting is not None else None


@dataclass(frozen=True)
class RunEvent:
    """An event whose fields are JSON already (the simple kinds); others override both."""

    KIND: ClassVar[str] = ""

    @property
    def kind(self) -> str:
        return self.KIND

    def fields(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_fields(cls, d: JSON) -> RunEvent:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class RunStarted(RunEvent):
    KIND = "run_started"
    run_id: str
    mode: str
    planned_trials: int
    version: str = ""
    recognition: bool = False


@dataclass(frozen=True)
class RunResumed(RunEvent):
    KIND = "run_resumed"


@dataclass(frozen=True)
class RunInterrupted(RunEvent):
    KIND = "run_interrupted"


@dataclass(frozen=True)
class RunFinished(RunEvent):
    KIND = "run_finished"


@dataclass(frozen=True)
class TrialStarted(RunEvent):
    KIND = "trial_started"
    trial: str
    number: int
    hyperparameters: JSON
    checkpoint: str
    system: SystemSetting | None = None  # v2 and oracle: the trial's own setting

    def fields(self) -> JSON:
        return {**super().fields(), "system": _dict(self.system)}

    @classmethod
    def from_fields(cls, d: JSON) -> TrialStarted:
        return cls(
            d["trial"],
            d["number"],
            d["hyperparameters"],
            d["checkpoint"],
            _setting(d.get("system")),
        )


@dataclass(frozen=True)
class TrialRestarted(RunEvent):
    """On resume: the checkpoint does not match the journal, so the trial starts afresh."""

    KIND = "trial_restarted"
    trial: str
    reason: str


@dataclass(frozen=True)
class SegmentStarted(RunEvent):
    KIND = "segment_started"
    trial: str
    index: int
    process: int
    setting: SystemSetting
    role: Role
    epochs: int
    first_epoch: int = 1  # the trial's epoch it starts at
    launch: SystemSetting | None = None
    why: str = ""

    def fields(self) -> JSON:
        return {
            **super().fields(),
            "setting": self.setting.as_dict(),
            "role": self.role.value,
            "launch": _dict(self.launch),
        }

    @classmethod
    def from_fields(cls, d: JSON) -> SegmentStarted:
        return cls(
            d["trial"],
            d["index"],
            d["process"],
            SystemSetting.of(d["setting"]),
            Role(d["role"]),
            d["epochs"],
            d.get("first_epoch", 1),
            _setting(d.get("launch")),
            d.get("why", ""),
        )


@dataclass(frozen=True)
class SegmentRecorded(RunEvent):
    """A segment (a stint of a process) finished or failed: `segment_done`/`segment_failed`.

    `power` is the process's power samples for the store; the journal does not keep them."""

    trial: str
    segment: SegmentRecord
    notes: JSON = field(default_factory=dict)  # e.g. a profiling error: kept, never fatal
    power: tuple[tuple[float, float, str], ...] = field(default=(), compare=False)

    @property
    def kind(self) -> str:  # one class, two kinds by outcome
        return "segment_done" if self.segment.ok else "segment_failed"

    def fields(self) -> JSON:
        notes = {"notes": self.notes} if self.notes else {}
        return {"trial": self.trial, **segment_event_fields(self.segment), **notes}

    @classmethod
    def from_fields(cls, d: JSON) -> SegmentRecorded:
        return cls(d["trial"], segment_from_event(d), dict(d.get("notes") or {}))


@dataclass(frozen=True)
class Epoch(RunEvent):
    KIND = "epoch"
    trial: str
    setting: SystemSetting
    role: Role
    epoch: int
    accuracy: float
    duration_s: float
    steady_s: float | None = None

    def fields(self) -> JSON:
        return {**super().fields(), "setting": self.setting.as_dict(), "role": self.role.value}

    @classmethod
    def from_fields(cls, d: JSON) -> Epoch:
        return cls(
            d["trial"],
            SystemSetting.of(d["setting"]),
            Role(d["role"]),
            d["epoch"],
            d["accuracy"],
            d["duration_s"],
            d.get("steady_s"),
        )


@dataclass(frozen=True)
class Recognition(RunEvent):
    """The look-up after the profiling epoch (recognition/service.py's answer)."""

    KIND = "recognition"
    trial: str
    result: JSON


@dataclass(frozen=True)
class DecisionMade(RunEvent):
    """At a pause: go on (at `to`) or stop there, and why."""

    KIND = "decision"
    trial: str
    index: int
    go_on: bool
    to: SystemSetting | None
    role: Role
    why: str
    iterations: int = 0  # a window of iterations next (0: by epochs)
    at: SystemSetting | None = None  # the setting it paused at

    def fields(self) -> JSON:
        out = {**super().fields(), "to": _dict(self.to), "role": self.role.value}
        out["at"] = _dict(self.at)
        if not self.iterations:
            del out["iterations"]
        return out

    @classmethod
    def from_fields(cls, d: JSON) -> DecisionMade:
        role = Role(d.get("role", Role.TRAIN.value))
        to = _setting(d.get("to"))
        at = _setting(d.get("at"))
        return cls(
            d["trial"], d["index"], d["go_on"], to, role, d["why"], d.get("iterations", 0), at
        )


@dataclass(frozen=True)
class Switch(RunEvent):
    """A change of a trial's setting after `epoch`, or inside it (after a window)."""

    KIND = "switch"
    trial: str
    epoch: int
    how: ApplyMode
    before: SystemSetting
    after: SystemSetting
    process: int
    inside_epoch: bool = False
    why: str = field(default="", compare=False)  # for progress; not journaled

    def fields(self) -> JSON:
        out: JSON = {
            "trial": self.trial,
            "epoch": self.epoch,
            "how": self.how.value,
            "from": self.before.as_dict(),
            "to": self.after.as_dict(),
            "process": self.process,
        }
        if self.inside_epoch:
            out["inside_epoch"] = True
        return out

    @classmethod
    def from_fields(cls, d: JSON) -> Switch:
        return cls(
            d["trial"],
            d["epoch"],
            ApplyMode(d["how"]),
            SystemSetting.of(d["from"]),
            SystemSetting.of(d["to"]),
            d.get("process", 0),
            bool(d.get("inside_epoch")),
        )


@dataclass(frozen=True)
class NotProbed(RunEvent):
    """Candidates the plan left out, each with why."""

    KIND = "not_probed"
    trial: str
    candidates: list[dict[str, str]]


@dataclass(frozen=True)
class TrialDone(RunEvent):
    KIND = "trial_done"
    trial: str
    accuracy: float | None


@dataclass(frozen=True)
class TrialFailed(RunEvent):
    KIND = "trial_failed"
    trial: str
    error: str


@dataclass(frozen=True)
class Learned(RunEvent):
    """What the recognition model made of the finished trial."""

    KIND = "learned"
    trial: str
    note: JSON | str


def _readers() -> dict[str, Callable[[JSON], RunEvent]]:
    kinds: dict[str, Callable[[JSON], RunEvent]] = {}
    for cls in (
        RunStarted,
        RunResumed,
        RunInterrupted,
        RunFinished,
        TrialStarted,
        TrialRestarted,
        SegmentStarted,
        Epoch,
        Recognition,
        DecisionMade,
        Switch,
        NotProbed,
        TrialDone,
        TrialFailed,
        Learned,
    ):
        kinds[cls.KIND] = cls.from_fields
    kinds["segment_done"] = kinds["segment_failed"] = SegmentRecorded.from_fields
    return kinds


READERS = _readers()


def parse_event(d: JSON) -> RunEvent:
    """A journal line's event (`type` names its kind; `time` is the journal's)."""
    kind = d.get("type", "")
    reader = READERS.get(kind)
    if reader is None:
        raise ResumeError(f"journal event type {kind!r} is not one this version of PipeTune knows")
    return reader({k: v for k, v in d.items() if k not in ("type", "time")})
