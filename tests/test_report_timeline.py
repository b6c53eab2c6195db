"""What the report draws, as data: each trial's bars over wall time (start-ups, epochs, windows,
switches, stops and resumes), the Pareto front, and the notices."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipetune.records import Energy, Role, SegmentRecord, WindowReport
from pipetune.report.notices import Level, run_notices
from pipetune.report.run_dir import TimedEvent, load_run
from pipetune.report.timeline import (
    KEPT_GAP_S,
    BarKind,
    MarkKind,
    trial_timelines,
)
from pipetune.report.tradeoff import TrialPoint, pareto_front
from pipetune.run_events import (
    RunEvent,
    RunInterrupted,
    RunResumed,
    SegmentRecorded,
    SegmentStarted,
    TrialDone,
    TrialRestarted,
    TrialStarted,
)
from tests.report_runs import PHASES, A, B, epoch, write_run


def timed(*pairs: tuple[float, RunEvent]) -> list[TimedEvent]:
    return [TimedEvent(when, event) for when, event in pairs]


def spans(bars: list) -> list[tuple[float, float, str, str]]:
    return [(round(b.start_s, 3), round(b.end_s, 3), b.kind.value, b.text) for b in bars]


def test_a_process_is_its_start_up_its_epochs_and_its_save(tmp_path: Path) -> None:
    (timeline, _) = trial_timelines(load_run(write_run(tmp_path)).events)
    assert timeline.trial == "t000" and timeline.lanes == ["process 1"]
    # 14 s for epoch 1: launch + spark context + data + model (7 s) before it, 6.5 s of epoch,
    # 0.5 s after it (the pause); each later stint starts with its live switch (0.2 s)
    assert spans(timeline.bars) == [
        (0.0, 7.0, "start-up", ""),
        (7.0, 13.5, "probe epoch", "e1"),
        (13.5, 14.0, "save, teardown, pauses", ""),
        (14.0, 14.2, "live switch", ""),
        (14.2, 23.7, "probe epoch", "e2"),
        (23.7, 23.9, "live switch", ""),
        (23.9, 29.4, "training epoch", "e3"),
        (29.4, 34.9, "training epoch", "e4"),
        (34.9, 36.4, "save, teardown, pauses", ""),
    ]
    settings = ["cores=2", "cores=1", "cores=2", "cores=2"]
    assert [b.setting for b in timeline.bars if b.text] == settings
    assert [(round(m.at_s, 3), m.kind, m.text) for m in timeline.marks] == [
        (14.0, MarkKind.LIVE, "live switch → cores=1"),
        (23.7, MarkKind.LIVE, "live switch → cores=2"),
    ]
    assert timeline.end_s == pytest.approx(36.4, abs=0.01)  # from the journal's real times


def test_an_epoch_after_windows_is_drawn_without_their_time() -> None:
    window = WindowReport(2, (0.1,) * 10, 2, 40, Energy(5.0, "estimate"))
    warm = SegmentRecord(
        0,
        A,
        Role.WARMUP,
        (epoch(1, 4.0, 0.5, 9, "estimate"),),
        10.0,
        Energy(20, "estimate"),
        process=1,
        phases={"launch": 5.5},
    )
    probe = SegmentRecord(
        1, B, Role.PROBE, (), 1.5, Energy(5, "estimate"), process=1, switch_s=0.1, window=window
    )
    # epoch 2's report covers the whole epoch, the 1.4 s of window before it included
    train = SegmentRecord(
        2,
        A,
        Role.TRAIN,
        (epoch(2, 4.0, 0.8, 9, "estimate"),),
        3.3,
        Energy(9, "estimate"),
        process=1,
        switch_s=0.1,
    )
    events = timed(
        (100.0, TrialStarted("t000", 0, {}, "/ck")),
        (100.0, SegmentStarted("t000", 0, 1, A, Role.WARMUP, 2)),
        *[(115.0, SegmentRecorded("t000", s)) for s in (warm, probe, train)],
        (115.0, TrialDone("t000", 0.8)),
    )
    (timeline,) = trial_timelines(events)
    kinds = [(b.kind, b.text, round(b.width_s, 3)) for b in timeline.bars]
    assert kinds == [
        (BarKind.STARTUP, "", 5.5),
        (BarKind.WARMUP, "e1", 4.5),
        (BarKind.SWITCH, "", 0.1),
        (BarKind.WINDOW, "w2", 1.4),
        (BarKind.SWITCH, "", 0.1),
        (BarKind.EPOCH, "e2", 4.5 - 1.4),
        (BarKind.END, "", round(3.3 - 0.1 - 3.1, 3)),
    ]
    assert [b.setting for b in timeline.bars][3] == "cores=1"


def test_a_stop_and_a_resume_an_hour_later_are_marked_and_the_pause_cut() -> None:
    first = SegmentRecord(
        0,
        A,
        Role.PROBE,
        (epoch(1, 9.0, 0.5, 9, "estimate"),),
        15.0,
        Energy(20, "estimate"),
        process=1,
        phases=PHASES,
    )
    second = SegmentRecord(
        1,
        A,
        Role.TRAIN,
        (epoch(2, 9.0, 0.7, 9, "estimate"),),
        14.0,
        Energy(20, "estimate"),
        process=2,
        phases=PHASES,
    )
    events = timed(
        (0.0, TrialStarted("t000", 0, {}, "/ck")),
        (0.0, SegmentStarted("t000", 0, 1, A, Role.PROBE, 2)),
        (15.0, SegmentRecorded("t000", first)),
        (16.0, RunInterrupted()),
        (3616.0, RunResumed()),
        (3617.0, SegmentStarted("t000", 1, 2, A, Role.TRAIN, 1)),
        (3631.0, SegmentRecorded("t000", second)),
        (3631.0, TrialDone("t000", 0.7)),
    )
    (timeline,) = trial_timelines(events)
    assert timeline.cut_s == pytest.approx(3600.0 - KEPT_GAP_S)
    assert timeline.lanes == ["process 1", "process 2"]
    marks = {m.kind: m for m in timeline.marks}
    assert marks[MarkKind.INTERRUPTED].at_s == 16.0
    assert marks[MarkKind.RESUMED].at_s == pytest.approx(16.0 + KEPT_GAP_S)
    assert marks[MarkKind.RESUMED].text == "resumed (1 h 0 min later)"
    second_start = min(b.start_s for b in timeline.bars if b.lane == "process 2")
    assert second_start == pytest.approx(17.0 + KEPT_GAP_S)
    assert timeline.end_s == pytest.approx(31.0 + KEPT_GAP_S)


def test_a_trial_restarted_from_scratch_keeps_its_old_bars_faded() -> None:
    seg = SegmentRecord(
        0,
        A,
        Role.PROBE,
        (epoch(1, 5.0, 0.5, 9, "estimate"),),
        8.0,
        Energy(20, "estimate"),
        process=1,
    )
    events = timed(
        (0.0, TrialStarted("t000", 0, {}, "/ck")),
        (0.0, SegmentStarted("t000", 0, 1, A, Role.PROBE, 1)),
        (8.0, SegmentRecorded("t000", seg)),
        (9.0, TrialRestarted("t000", "checkpoint says 0 epochs, journal 1")),
        (9.5, SegmentStarted("t000", 0, 1, A, Role.PROBE, 1)),
        (17.5, SegmentRecorded("t000", seg)),
    )
    (timeline,) = trial_timelines(events)
    assert [b.discarded for b in timeline.bars if b.text == "e1"] == [True, False]
    assert [m.kind for m in timeline.marks] == [MarkKind.TRIAL_RESTARTED]


def test_a_record_without_segment_started_ends_when_it_was_journaled() -> None:
    seg = SegmentRecord(
        3, B, Role.TRAIN, (epoch(4, 5.0, 0.5, 9, "estimate"),), 8.0, Energy(20, "estimate")
    )
    events = timed((0.0, TrialStarted("t000", 0, {}, "/ck")), (20.0, SegmentRecorded("t000", seg)))
    (timeline,) = trial_timelines(events)
    assert timeline.lanes == ["segment 3"]  # journals before processes were numbered
    assert timeline.bars[0].start_s == 12.0 and timeline.end_s == 20.0


def test_failures_are_marked_where_they_happened(tmp_path: Path) -> None:
    timelines = trial_timelines(load_run(write_run(tmp_path, failed=True)).events)
    failed = timelines[1]
    assert [b.kind for b in failed.bars] == [BarKind.FAILED]
    assert [(m.kind, round(m.at_s, 3)) for m in failed.marks] == [(MarkKind.FAILED, 3.0)]


def point(trial: str, accuracy: float, time_s: float) -> TrialPoint:
    return TrialPoint(trial, accuracy, time_s, 0.0, "estimate", "cores=2", False)


def test_the_pareto_front_keeps_what_nothing_beats_on_both() -> None:
    points = [
        point("a", 0.90, 50.0),
        point("b", 0.95, 80.0),
        point("c", 0.85, 60.0),  # beaten by a
        point("d", 0.95, 90.0),  # as accurate as b, dearer
        point("e", 0.80, 20.0),
        point("f", 0.90, 50.0),  # a's twin: one of them is enough
    ]
    front = pareto_front(points, lambda p: p.time_s)
    assert [p.trial for p in front] == ["e", "a", "b"]


def test_notices_for_an_unfinished_run(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path))
    run.summary["status"] = "running"
    run.events.pop()  # no run_finished: killed
    texts = [n.text for n in run_notices(run) if n.level is Level.WARNING]
    assert texts == [
        "The run did not finish: it was killed, or is still running. "
        "summary.json is as of its last finished trial."
    ]
    run.summary["trials"].pop()  # written before the last trial ended
    texts = [n.text for n in run_notices(run) if n.level is Level.WARNING]
    assert texts[-1] == (
        "The journal has 2 finished trial(s), summary.json 1: the timelines show all, "
        "the tables what summary.json holds."
    )
