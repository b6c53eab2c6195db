"""A segment's start-up by phase: what the tuner measures and what the app reports."""

from __future__ import annotations

import time

import pytest

from pipetune import contract
from pipetune.backends.startup import StartupPhases
from pipetune.journal import segment_event_fields, segment_from_event
from pipetune.probing.plan import FixedPlan
from pipetune.records import Energy, EpochReport, Role, SegmentRecord, SettingSource, SystemSetting
from pipetune.results import trial_summary
from pipetune.run_state import TrialState
from pipetune.store.schema import segment_point

C2 = SystemSetting.of({"cores": "2"})


def test_the_launch_runs_to_the_apps_python_and_the_teardown_from_its_end_to_now():
    phases = StartupPhases(time.time() - 10.0)
    app = {"spark context": 3.0, "data": 4.5, "model": 1.25, "bad": -1, "worse": "x"}
    phases.started({"python_at": phases.launched_at + 2.0, "phases_s": app})
    phases.ended(0.75)
    phases.ended_at = time.time() - 0.5  # the process took half a second to go
    seconds = phases.finished()
    assert seconds["launch"] == pytest.approx(2.0, abs=0.01)
    assert (seconds["spark context"], seconds["data"], seconds["model"]) == (3.0, 4.5, 1.25)
    assert seconds["save"] == 0.75 and seconds["teardown"] == pytest.approx(0.5, abs=0.05)
    assert "bad" not in seconds and "worse" not in seconds  # not a duration: left out


def test_an_app_that_says_nothing_has_no_phases_and_a_clock_from_elsewhere_no_launch():
    assert StartupPhases(time.time()).finished() == {}
    phases = StartupPhases(time.time())
    phases.started({"python_at": phases.launched_at - 3600.0, "phases_s": {"data": 1.0}})
    assert phases.finished() == {"data": 1.0}  # an hour before the launch: not this process
    phases.started("not a dict")
    assert phases.finished() == {"data": 1.0}


def test_this_process_started_before_now_and_not_long_ago():
    started = contract.process_started_at()
    assert 0.0 <= time.time() - started < 24 * 3600


def test_phases_are_journaled_summed_per_trial_and_written_as_segment_fields():
    e = EpochReport(1, 5.0, 0.5, 1.0, 0.9, 100, {}, Energy(10.0, "rapl"))
    first = SegmentRecord(
        0, C2, Role.TRAIN, (e,), 20.0, e.energy, process=1, phases={"launch": 4.0, "data": 3.0}
    )
    second = SegmentRecord(
        1, C2, Role.TRAIN, (e,), 18.0, e.energy, process=2, phases={"launch": 3.5, "save": 0.5}
    )
    again = segment_from_event({"type": "segment_done", **segment_event_fields(first)})
    assert again.phases == {"launch": 4.0, "data": 3.0}
    old = segment_event_fields(first)
    del old["phases"]  # a journal written before phases were kept
    assert segment_from_event(old).phases == {}
    trial = TrialState("t000", 0, {}, None, "ckpt", "done", [first, second])
    summary = trial_summary(trial, FixedPlan(2, C2, SettingSource.DEFAULT), C2)
    assert summary["time"]["startup_phases_s"] == {"launch": 7.5, "data": 3.0, "save": 0.5}
    point = segment_point("run", "t000", first, 0)
    assert point.fields["startup_launch_s"] == 4.0 and point.fields["startup_data_s"] == 3.0
    spaced = SegmentRecord(0, C2, Role.TRAIN, (), 1.0, e.energy, phases={"spark context": 2.0})
    assert segment_point("run", "t000", spaced, 0).fields["startup_spark_context_s"] == 2.0
