"""Process reuse in replay: a trace's reuse figures (format v4), how the replay charges a
segment in the idle process of the one before, and how a replay without them stays as it was."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from pipetune.config import load_config
from pipetune.errors import SegmentFailed
from pipetune.probing.candidates import probe_candidates
from pipetune.records import EpochReport, Role, SegmentRequest, SystemSetting
from pipetune.replay import COLUMNS, ReplayBackend, Trace, TraceError, synthetic_trace
from pipetune.replay.offline import oracle_violations, run_offline
from pipetune.replay.oracle import trial_cost
from pipetune.replay.runner import replay_job, reuse_note
from pipetune.replay.trace import ReuseCost
from tests.conftest import write_project

DEFAULT = SystemSetting.of({"cores": 2})
OTHER = SystemSetting.of({"cores": 1})
HP = {"batch_size": 64, "lr": 0.1}
CONFIG = json.dumps(HP, sort_keys=True, separators=(",", ":"))


def rows(setting: SystemSetting, startup: float, **reuse: float) -> list[dict[str, object]]:
    """Five epochs of HP at `setting`: epoch e trains 10·e s, validates 1 s, costs 100·e J."""
    return [
        {
            "workload": "lenet5",
            "config": CONFIG,
            "setting": setting.label(),
            "epoch": e,
            "duration_s": 10.0 * e,
            "eval_s": 1.0,
            "energy_j": 100.0 * e,
            "energy_source": "rapl",
            "accuracy": round(0.1 * e, 3),
            "loss": 1.0 / e,
            "samples": 6144,
            "startup_s": startup,
            "switch_s": 0.0,
            "synthetic": False,
            **reuse,
        }
        for e in range(1, 6)
    ]


@pytest.fixture
def trace() -> Trace:
    """DEFAULT measured reuse (2 s start-up, epoch 1 at half a new process's); OTHER did not."""
    data = rows(DEFAULT, 20.0, reuse_startup_s=2.0, reuse_epoch1_ratio=0.5) + rows(OTHER, 30.0)
    return Trace(pd.DataFrame(data, columns=list(COLUMNS)))


def ignore(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    """An `EpochCallback` that keeps nothing."""


def request(trial: str, setting: SystemSetting, epochs: int) -> SegmentRequest:
    return SegmentRequest(trial, setting, epochs, Role.TRAIN, dict(HP), "ckpt", "log")


def with_reuse(trace: Trace, startup_s: float, ratio: float) -> Trace:
    """`trace` with the same reuse figures on every group."""
    return Trace(trace.frame.assign(reuse_startup_s=startup_s, reuse_epoch1_ratio=ratio))


# ---------------------------------------------------------------------------- the backend


def test_a_segment_launched_alike_runs_in_the_idle_process_at_the_reused_cost(trace: Trace):
    backend = ReplayBackend(trace, "lenet5", reuse=True)
    first = backend.run_segment(request("t1", DEFAULT, 4), ignore)
    assert first.reused == 0 and first.startup_s == pytest.approx(20.0)
    second = backend.run_segment(request("t2", DEFAULT, 4), ignore)
    assert second.reused == 1
    assert second.startup_s == pytest.approx(2.0)
    epochs = second.epochs
    # epoch 1 warm: half of a new process's (time, eval, energy); accuracy its own
    assert (epochs[0].duration_s, epochs[0].eval_s) == pytest.approx((5.0, 0.5))
    assert epochs[0].energy.joules == pytest.approx(50.0) and epochs[0].accuracy == 0.1
    assert [e.duration_s for e in epochs[1:]] == [20.0, 30.0, 40.0]
    # start-up energy at epoch 1's rate (100 J / 11 s), as a new process's
    expected_j = 2.0 * 100.0 / 11.0 + 50.0 + 200.0 + 300.0 + 400.0
    assert second.energy.joules == pytest.approx(expected_j)
    third = backend.run_segment(request("t3", DEFAULT, 1), ignore)
    assert third.reused == 2  # the same process, its third segment


def test_a_continued_trial_in_a_reused_process_pays_the_warm_epoch_1(trace: Trace):
    backend = ReplayBackend(trace, "lenet5", reuse=True)
    backend.run_segment(request("t1", DEFAULT, 2), ignore)
    rest = backend.run_segment(request("t1", DEFAULT, 2), ignore)
    assert rest.reused == 1 and [e.epoch for e in rest.epochs] == [3, 4]
    assert [e.duration_s for e in rest.epochs] == pytest.approx([5.0, 40.0])
    assert [e.accuracy for e in rest.epochs] == [0.3, 0.4]


def test_what_leaves_no_process_to_reuse(trace: Trace):
    backend = ReplayBackend(trace, "lenet5", reuse=True)
    backend.run_segment(request("t1", DEFAULT, 1), ignore)
    other = backend.run_segment(request("t2", OTHER, 1), ignore)  # launched differently
    assert other.reused == 0 and other.startup_s == pytest.approx(30.0)
    again = backend.run_segment(request("t3", OTHER, 1), ignore)  # no figures at OTHER
    assert again.reused == 0 and again.startup_s == pytest.approx(30.0)
    back = backend.run_segment(request("t4", DEFAULT, 1), ignore)  # retired by t2
    assert back.reused == 0
    with pytest.raises(SegmentFailed, match="needs epoch 6"):  # failed: its process is gone
        backend.run_segment(request("t4", DEFAULT, 5), ignore)
    assert backend.run_segment(request("t5", DEFAULT, 1), ignore).reused == 0
    backend.close()  # the run is over: the idle process is retired
    assert backend.run_segment(request("t6", DEFAULT, 1), ignore).reused == 0


def test_without_reuse_or_without_figures_every_segment_is_a_new_process(trace: Trace):
    def results(backend: ReplayBackend) -> list[object]:
        return [backend.run_segment(request(f"t{i}", DEFAULT, 3), ignore) for i in range(3)]

    plain = results(ReplayBackend(trace, "lenet5"))
    assert all(r.reused == 0 and r.startup_s == pytest.approx(20.0) for r in plain)
    old = Trace(trace.frame.assign(reuse_startup_s=None, reuse_epoch1_ratio=None))
    assert not old.has_reuse("lenet5") and trace.has_reuse("lenet5")
    assert not ReplayBackend(old, "lenet5", reuse=True).reuses
    assert results(ReplayBackend(old, "lenet5", reuse=True)) == plain  # exactly as before


def test_a_two_trial_v1_replay_reuses_the_first_trials_process(tmp_path: Path):
    config = load_config(write_project(tmp_path, {"search": {"trials": 2, "epochs": 4}}))
    settings = probe_candidates(config.system_parameters, "grid")
    trace = with_reuse(synthetic_trace(1, 4, settings, 4, seed=3), 1.5, 0.4)
    workload = trace.workloads()[0]
    outcome = replay_job(trace, workload, config, "v1", 0)
    first, second = outcome.summary["trials"]
    assert (first["reused_processes"], second["reused_processes"]) == (0, 1)
    default = settings[0].label()
    fresh = trace.epochs(workload, first["hyperparameters"], default)[0]
    assert first["time"]["startup_s"] == pytest.approx(fresh.startup_s, abs=1e-3)
    assert second["time"]["startup_s"] == pytest.approx(1.5, abs=1e-3)
    epoch1 = trace.epochs(workload, second["hyperparameters"], default)[0]
    assert outcome.first_epochs[1]["duration_s"] == pytest.approx(0.4 * epoch1.duration_s)
    # with reuseProcess off in the app config, the same trace replays every trial anew
    app = dataclasses.replace(config.app, reuse_process=False)
    off = replay_job(trace, workload, dataclasses.replace(config, app=app), "v1", 0)
    assert [t["reused_processes"] for t in off.summary["trials"]] == [0, 0]
    assert "off" in reuse_note(trace, dataclasses.replace(config, app=app))
    assert "modelled from the trace" in reuse_note(trace, config)
    plain = synthetic_trace(1, 4, settings, 4, seed=3)
    assert f"not modelled for {workload}:" in reuse_note(plain, config)


def test_no_strategy_beats_the_oracle_with_reuse(tmp_path: Path):
    config = load_config(write_project(tmp_path, {"search": {"trials": 3, "epochs": 4}}))
    settings = probe_candidates(config.system_parameters, "grid")
    trace = with_reuse(synthetic_trace(2, 5, settings, 4, seed=11), 2.0, 0.5)
    outcomes = run_offline(trace, config, range(2))
    reused = sum(t["reused_processes"] for o in outcomes for t in o.summary["trials"])
    assert reused > 0
    assert oracle_violations(trace, config, outcomes) == []


def test_the_oracle_prices_a_trial_in_a_reused_process(trace: Trace):
    fresh = trial_cost(trace, "lenet5", CONFIG, DEFAULT.label(), 4)
    reused = trial_cost(trace, "lenet5", CONFIG, DEFAULT.label(), 4, reused=True)
    assert fresh.epoch_s == pytest.approx(20.0 + 11 + 21 + 31 + 41)
    assert reused.epoch_s == pytest.approx(2.0 + 5.5 + 21 + 31 + 41)
    rate = 100.0 / 11.0
    assert reused.energy_j == pytest.approx(2.0 * rate + 50 + 200 + 300 + 400)
    # no figures: a reused trial costs what a new one does
    other = trial_cost(trace, "lenet5", CONFIG, OTHER.label(), 4, reused=True)
    assert other == trial_cost(trace, "lenet5", CONFIG, OTHER.label(), 4)


# ---------------------------------------------------------------------------- the format


def test_reuse_figures_round_trip_and_are_queried(trace: Trace, tmp_path: Path):
    assert trace.reuse("lenet5", CONFIG, DEFAULT) == ReuseCost(2.0, 0.5)
    assert trace.reuse("lenet5", HP, OTHER) is None
    assert trace.reuse("lenet5", CONFIG, "cores=8") is None
    first = trace.epochs("lenet5", CONFIG, DEFAULT)[0]
    assert (first.reuse_startup_s, first.reuse_epoch1_ratio) == (2.0, 0.5)
    for name in ("t.csv.gz", "t.parquet"):
        trace.save(tmp_path / name)
        again = Trace.load(tmp_path / name)
        pd.testing.assert_frame_equal(again.frame, trace.frame, check_exact=True)
    with gzip.open(tmp_path / "t.csv.gz", "rt") as fh:
        assert fh.readline() == "# pipetune-trace v4\n"


def test_a_v3_file_reads_without_reuse_figures_and_refuses_them(trace: Trace, tmp_path: Path):
    v3 = [c for c in COLUMNS if not c.startswith("reuse_")]
    with gzip.open(tmp_path / "v3.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v3\n" + trace.frame[v3].to_csv(index=False))
    loaded = Trace.load(tmp_path / "v3.csv.gz")
    assert not loaded.has_reuse("lenet5") and loaded.reuse("lenet5", CONFIG, DEFAULT) is None
    assert loaded.frame["reuse_startup_s"].isna().all()
    with gzip.open(tmp_path / "bad.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v3\n" + trace.frame.to_csv(index=False))
    with pytest.raises(TraceError) as info:
        Trace.load(tmp_path / "bad.csv.gz")
    found = [(p.column, p.found) for p in info.value.problems]
    assert found == [
        ("reuse_startup_s", "a column of v4"),
        ("reuse_epoch1_ratio", "a column of v4"),
    ]
    with gzip.open(tmp_path / "v4.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v4\n" + trace.frame[v3].to_csv(index=False))
    with pytest.raises(TraceError, match="column 'reuse_startup_s': expected this column"):
        Trace.load(tmp_path / "v4.csv.gz")


def _problems(data: list[dict[str, object]]) -> list[str]:
    with pytest.raises(TraceError) as info:
        Trace(pd.DataFrame(data, columns=list(COLUMNS)))
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("reuse", "problem"),
    [
        (
            {"reuse_startup_s": -1.0, "reuse_epoch1_ratio": 0.5},
            "row 1, column 'reuse_startup_s': expected a finite number >= 0 or null, found -1.0",
        ),
        (
            {"reuse_startup_s": 1.0, "reuse_epoch1_ratio": 0.0},
            "row 1, column 'reuse_epoch1_ratio': expected a finite number > 0 or null, found 0.0",
        ),
        (
            {"reuse_startup_s": 1.0, "reuse_epoch1_ratio": "warm"},
            "row 1, column 'reuse_epoch1_ratio': expected a finite number > 0 or null, "
            "found 'warm'",
        ),
        (
            {"reuse_startup_s": 1.0},
            "row 1, column 'reuse_epoch1_ratio': expected reuse_startup_s and "
            "reuse_epoch1_ratio both present or both null, found only reuse_startup_s",
        ),
        (
            {"reuse_epoch1_ratio": 0.5},
            "row 1, column 'reuse_epoch1_ratio': expected reuse_startup_s and "
            "reuse_epoch1_ratio both present or both null, found only reuse_epoch1_ratio",
        ),
    ],
)
def test_bad_reuse_cells_name_row_and_column(reuse: dict[str, object], problem: str):
    data = rows(DEFAULT, 20.0)
    data[0] = {**data[0], **reuse}
    assert problem in _problems(data)


def test_reuse_figures_are_one_per_group():
    data = rows(DEFAULT, 20.0, reuse_startup_s=2.0, reuse_epoch1_ratio=0.5)
    data[3] = {**data[3], "reuse_startup_s": 3.0}
    data[4] = {**data[4], "reuse_startup_s": None, "reuse_epoch1_ratio": None}
    found = _problems(data)
    assert found == [
        "row 1, column 'reuse_startup_s': expected one reused start-up value on every row of "
        f"(lenet5, {CONFIG}, cores=2), found 3 different values",
        "row 1, column 'reuse_epoch1_ratio': expected one reused first-epoch ratio on every row "
        f"of (lenet5, {CONFIG}, cores=2), found 2 different values",
    ]
