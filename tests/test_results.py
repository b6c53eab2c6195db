from __future__ import annotations

import csv
import json
from pathlib import Path

from pipetune.config import ProbingConfig
from pipetune.journal import Journal, read_events, segment_event_fields
from pipetune.probing.plan import PipelinedPlan
from pipetune.records import Energy, EpochReport, Role, SegmentRecord, SystemSetting
from pipetune.results import run_summary, trial_summary, write_results
from pipetune.run_state import RunState

A = SystemSetting.of({"cores": "2"})
B = SystemSetting.of({"cores": "1"})


def epoch(n: int, duration: float, acc: float, joules: float) -> EpochReport:
    return EpochReport(n, duration, 1.0, 0.4, acc, 100, {}, Energy(joules, "estimate"))


SEGMENTS = [
    SegmentRecord(0, A, Role.PROBE, (epoch(1, 10.0, 0.30, 50.0),), 25.0, Energy(120.0, "estimate")),
    SegmentRecord(1, B, Role.PROBE, (epoch(2, 6.0, 0.55, 40.0),), 20.0, Energy(90.0, "estimate")),
    SegmentRecord(2, A, Role.PROBE, (), 4.0, Energy(0.0, "none"), error="exit 1"),
    SegmentRecord(
        3,
        B,
        Role.TRAIN,
        (epoch(3, 6.0, 0.70, 40.0), epoch(4, 6.0, 0.80, 40.0)),
        30.0,
        Energy(150.0, "estimate"),
    ),
]


def journal_with(tmp_path: Path) -> Path:
    j = Journal(tmp_path / "journal.jsonl")
    j.append("run_started", run_id="r1", mode="pipetune", planned_trials=1)
    j.append(
        "trial_started",
        trial="t000",
        number=0,
        hyperparameters={"lr": 0.1},
        checkpoint="/ck",
        system=None,
    )
    for seg in SEGMENTS:
        j.append(
            "segment_failed" if seg.error else "segment_done",
            trial="t000",
            **segment_event_fields(seg),
        )
    j.append("trial_done", trial="t000", accuracy=0.80)
    j.close()
    return tmp_path / "journal.jsonl"


def test_journal_replay_rebuilds_segments_exactly(tmp_path: Path) -> None:
    state = RunState.replay(read_events(journal_with(tmp_path)))
    trial = state.trials["t000"]
    assert trial.segments == SEGMENTS
    assert trial.status == "done" and trial.accuracy == 0.80


def test_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = journal_with(tmp_path)
    with open(path, "a") as f:
        f.write('{"type": "trial_do')
    assert len(read_events(path)) == 7


def test_trial_accounting_includes_every_probe_and_startup(tmp_path: Path) -> None:
    state = RunState.replay(read_events(journal_with(tmp_path)))
    plan = PipelinedPlan(4, [A, B, A], ProbingConfig())
    s = trial_summary(state.trials["t000"], plan, A)
    assert s["accuracy"] == 0.80  # the final epoch's, not the first's
    assert s["epochs"] == 4
    assert s["time"]["total_s"] == 79.0  # 25 + 20 + 4 (failed) + 30
    assert s["time"]["probe_s"] == 18.0  # (10+1) + (6+1)
    assert s["time"]["train_s"] == 14.0
    assert s["time"]["startup_s"] == 79.0 - 18.0 - 14.0
    assert s["energy"] == {"joules": 360.0, "source": "estimate"}
    assert s["system"]["chosen"] == {"cores": "1"} and s["system"]["source"] == "probed"
    assert [p["epoch_s"] for p in s["system"]["probes"]] == [10.0, 6.0, None]
    assert s["system"]["probes"][2]["error"] == "exit 1"
    # without iteration times the compared (steady) time is the whole epoch's
    assert [p["steady_s"] for p in s["system"]["probes"]] == [10.0, 6.0, None]
    assert [p["epoch"] for p in s["system"]["probes"]] == [1, 2, None]
    # records without a process number (older journals) each count as their own process
    assert [p["how"] for p in s["system"]["probes"]] == ["new process"] * 3
    assert s["processes"] == 4
    assert s["system"]["switches"] == [
        {
            "epoch": 1,
            "from": {"cores": "2"},
            "to": {"cores": "1"},
            "how": "restart",
            "overhead_s": 13.0,  # the probe's 20 s less its epoch (6 + 1)
        }
    ]
    assert s["system"]["not_probed"] == []


def test_result_files(tmp_path: Path) -> None:
    state = RunState.replay(read_events(journal_with(tmp_path)))
    plan = PipelinedPlan(4, [A, B, A], ProbingConfig())
    trials = [trial_summary(state.trials["t000"], plan, A)]
    summary = run_summary(state, trials, "finished", "estimate: test")
    write_results(tmp_path, state, summary)
    loaded = json.loads((tmp_path / "summary.json").read_text())
    assert loaded["best"] == {
        "trial": "t000",
        "accuracy": 0.8,
        "hyperparameters": {"lr": 0.1},
        "system": {"cores": "1"},
    }
    rows = list(csv.DictReader((tmp_path / "epochs.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["role"] for r in rows] == ["probe", "probe", "train", "train"]
    trial_rows = list(csv.DictReader((tmp_path / "trials.csv").read_text().splitlines()))
    assert trial_rows[0]["chosen"] == "cores=1" and trial_rows[0]["energy_source"] == "estimate"
