"""Typed run events, the state folded from them, and the recorder that journals them first."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipetune.errors import ResumeError
from pipetune.journal import read_events
from pipetune.progress import Progress
from pipetune.records import ApplyMode, Energy, EpochReport, Role, SegmentRecord, SystemSetting
from pipetune.run_events import (
    READERS,
    DecisionMade,
    Epoch,
    Learned,
    NotProbed,
    Recognition,
    RunEvent,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    SegmentRecorded,
    SegmentStarted,
    Switch,
    TrialDone,
    TrialFailed,
    TrialRestarted,
    TrialStarted,
    parse_event,
)
from pipetune.run_recorder import ProgressFeed, RunRecorder, StoreFeed
from pipetune.run_state import RunState, TrialStatus
from pipetune.store.sqlite import SqliteStore

C1 = SystemSetting.of({"cores": "1"})
C2 = SystemSetting.of({"cores": "2"})
EPOCH = EpochReport(1, 6.0, 0.5, 0.4, 0.9, 100, {}, Energy(30.0, "estimate"), steady_s=5.5)
DONE = SegmentRecord(0, C2, Role.PROBE, (EPOCH,), 9.0, Energy(45.0, "estimate"), process=1)
FAILED = SegmentRecord(1, C1, Role.PROBE, (), 2.0, Energy.zero(), "exit 1", process=2)

ONE_OF_EACH: list[RunEvent] = [
    RunStarted("r1", "pipetune", 2, "0.1.0", True),
    RunResumed(),
    TrialStarted("t000", 0, {"lr": 0.1}, "/ck", None),
    TrialStarted("t001", 1, {"lr": 0.2}, "/ck1", C1),
    SegmentStarted("t000", 0, 1, C2, Role.WARMUP, 4, 1, None, "warm-up"),
    Epoch("t000", C2, Role.PROBE, 1, 0.9, 6.0, 5.5),
    Recognition("t000", {"hit": True, "setting": {"cores": "1"}, "values": {"epoch_s": 4.0}}),
    DecisionMade("t000", 0, True, C1, Role.PROBE, "probing cores=1", 18, C2),
    DecisionMade("t000", 1, False, None, Role.TRAIN, "stop", 0, C1),
    Switch("t000", 1, ApplyMode.LIVE, C2, C1, 1, True),
    SegmentRecorded("t000", DONE, {"profile_error": "none"}),
    SegmentRecorded("t000", FAILED),
    NotProbed("t000", [{"setting": "memory=1g", "why": "needs a restart"}]),
    TrialRestarted("t000", "checkpoint holds 1 epoch(s), journal 0"),
    TrialDone("t000", 0.91),
    TrialFailed("t001", "exit 1"),
    Learned("t000", "added to the model"),
    RunInterrupted(),
    RunFinished(),
]


def test_every_kind_reads_back_as_it_was_written() -> None:
    kinds = set()
    for event in ONE_OF_EACH:
        line = json.loads(json.dumps({"type": event.kind, "time": 1.0, **event.fields()}))
        assert parse_event(line) == event
        kinds.add(event.kind)
    assert kinds == set(READERS)  # the list above covers every kind the journal has


def test_a_segment_event_is_done_or_failed_by_its_outcome() -> None:
    assert SegmentRecorded("t", DONE).kind == "segment_done"
    assert SegmentRecorded("t", FAILED).kind == "segment_failed"
    assert "power" not in SegmentRecorded("t", DONE, power=((1.0, 5.0, "rapl"),)).fields()


def test_an_older_journals_lines_still_read() -> None:
    """Fields added later (decision `at`, segment `first_epoch`) default when absent."""
    decision = {"type": "decision", "trial": "t", "index": 0, "go_on": True, "to": None}
    read = parse_event({**decision, "why": "go on"})
    assert isinstance(read, DecisionMade) and read.go_on and read.at is None
    started = {"type": "segment_started", "trial": "t", "index": 0, "process": 1}
    read = parse_event({**started, "setting": {"cores": "2"}, "role": "probe", "epochs": 3})
    assert isinstance(read, SegmentStarted) and read.first_epoch == 1


def test_an_unknown_kind_is_a_resume_error() -> None:
    with pytest.raises(ResumeError, match="'fancy_event' is not one this version"):
        parse_event({"type": "fancy_event"})


def test_the_state_folds_the_events_that_change_it() -> None:
    state = RunState()
    for event in ONE_OF_EACH[:13]:
        state.apply(event)
    t0, t1 = state.trials["t000"], state.trials["t001"]
    assert (state.run_id, state.mode, state.planned_trials) == ("r1", "pipetune", 2)
    assert t0.segments == [DONE, FAILED] and t1.system == C1
    assert t0.history().recognized is not None and t0.history().recognized.setting == C1
    assert [d["to"] for d in t0.decisions] == [{"cores": "1"}, None]
    state.apply(ONE_OF_EACH[13])  # restarted: segments, recognition, decisions cleared
    assert t0.segments == [] and t0.recognition is None and t0.decisions == []
    for event in ONE_OF_EACH[14:]:
        state.apply(event)
    assert (t0.status, t0.accuracy) == (TrialStatus.DONE, 0.91)
    assert (t1.status, t1.error) == (TrialStatus.FAILED, "exit 1")
    assert state.finished


class Order:
    """A listener that checks the event is on disk and in the state before it is told."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.seen: list[str] = []

    def on_event(self, event: RunEvent, state: RunState) -> None:
        on_disk = [e["type"] for e in read_events(self.journal)]
        assert on_disk[-1] == event.kind
        if isinstance(event, TrialStarted):
            assert event.trial in state.trials
        self.seen.append(event.kind)


def test_the_recorder_journals_applies_then_tells(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    recorder = RunRecorder(path, RunState())
    order = Order(path)
    store = SqliteStore(tmp_path / "metrics.db")
    out = io.StringIO()
    recorder.listeners += [order, StoreFeed(store), ProgressFeed(Progress(stream=out), 4)]
    for event in ONE_OF_EACH[:13]:
        recorder.record(event)
    recorder.close()
    assert order.seen == [e.kind for e in ONE_OF_EACH[:13]]
    assert RunState.replay(read_events(path)) == recorder.state
    # the store got the recorded segments' points: the done one's epoch and both segments
    epochs = store.query("epoch", {"trial": "t000"})
    segments = store.query("segment", {"trial": "t000"})
    assert len(epochs) == 1 and len(segments) == 2
    lines = out.getvalue().splitlines()
    assert any("epoch 1/4 6.0 s/epoch acc 0.900" in line for line in lines)
    assert any("recognised" in line and "cores=1" in line for line in lines)
    assert any("cores=2 → cores=1 inside epoch 1: live" in line for line in lines)
    assert any("cores=1 FAILED: exit 1" in line for line in lines)
