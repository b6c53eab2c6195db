"""Real BigDL training through spark-submit: local Spark and a loopback standalone cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipetune.backends.spark import SparkSubmitBackend
from pipetune.config import load_config
from pipetune.records import EpochReport, Pause, Role, SegmentRequest, SystemSetting
from pipetune.spark_env import discover
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel
from tests.conftest import write_project
from tests.spark_cluster import standalone_cluster

pytestmark = pytest.mark.spark
HPS = {"batch_size": 32, "learning_rate": 0.05, "learning_rate_decay": 0.001}


def backend_for(
    tmp_path: Path, app: dict | None = None, conf: dict | None = None
) -> SparkSubmitBackend:
    cfg = load_config(write_project(tmp_path, conf, app))
    return SparkSubmitBackend(
        cfg.app, discover(), EnergySource(CpuPowerModel(10.0, 5.0)), cwd=tmp_path
    )


def request(
    tmp_path: Path,
    trial: str,
    setting: dict,
    epochs: int,
    role: Role = Role.TRAIN,
    hps: dict | None = None,
) -> SegmentRequest:
    return SegmentRequest(
        trial,
        SystemSetting.of(setting),
        epochs,
        role,
        hps or HPS,
        str(tmp_path / trial / "checkpoint"),
        str(tmp_path / trial / "seg.log"),
    )


def test_segments_continue_from_the_trials_own_checkpoint(tmp_path: Path) -> None:
    backend = backend_for(tmp_path)
    seen: list[EpochReport] = []
    first = backend.run_segment(request(tmp_path, "t0", {"cores": "2"}, 2), seen.append)
    assert [e.epoch for e in first.epochs] == [1, 2] and seen == first.epochs
    assert first.startup_s > 1.0  # JVM + Spark + data: measured apart from the epochs
    assert first.energy.source == "estimate" and first.energy.joules > 0
    assert all(e.energy.joules > 0 and e.duration_s > 0 for e in first.epochs)
    # every sampled hyperparameter reached the app (it echoes what it parsed)
    assert first.epochs[0].echoed["batchSize"] == 32
    assert first.epochs[0].echoed["learningRateDecay"] == pytest.approx(0.001)

    # a probe that may go on: it pauses after one epoch; told to stop, it saves and ends there
    pauses: list[Pause] = []

    def stop(pause: Pause) -> bool:
        pauses.append(pause)
        return False

    probe = dataclasses.replace(
        request(tmp_path, "t0", {"cores": "1"}, 2, Role.PROBE), decide_after=1
    )
    second = backend.run_segment(probe, lambda e: None, stop)
    assert [e.epoch for e in second.epochs] == [3]  # resumed: the epoch counter continues
    assert second.paused is not None and not second.paused.continued and second.paused.after == 1
    assert [e.epoch for e in pauses[0].epochs] == [3] and 0 < pauses[0].wall_s <= second.wall_s
    meta = json.loads((tmp_path / "t0" / "checkpoint" / "meta.json").read_text())
    assert meta["epochs_done"] == 3
    assert second.epochs[0].accuracy > 0.5  # learns from real digits, well above chance (0.1)

    # a different trial starts from scratch, never from t0's weights; told to go on after its
    # first epoch, it trains the second in the same process: one start-up for both
    fresh = dataclasses.replace(request(tmp_path, "t1", {"cores": "2"}, 2), decide_after=1)
    other = backend.run_segment(fresh, lambda e: None, lambda pause: True)
    assert [e.epoch for e in other.epochs] == [1, 2]
    assert other.paused is not None and other.paused.continued
    assert other.paused.wall_s < other.wall_s
    assert other.wall_s - other.paused.wall_s < other.paused.wall_s  # no second start-up
    meta = json.loads((tmp_path / "t1" / "checkpoint" / "meta.json").read_text())
    assert meta["epochs_done"] == 2


def test_standalone_cluster_runs_a_segment_on_executors(tmp_path: Path) -> None:
    with standalone_cluster(tmp_path) as master:
        backend = backend_for(
            tmp_path, {"master": master, "num_executors": 2, "executor_memory": "1g"}
        )
        result = backend.run_segment(
            request(tmp_path, "t0", {"cores": "2", "memory": "1g"}, 1), lambda e: None
        )
    assert [e.epoch for e in result.epochs] == [1]
    assert result.app_id.startswith("app-")
    log = (tmp_path / "t0" / "seg.log").read_text()
    assert f"--master {master}" in log and "--total-executor-cores 2 --executor-cores 1" in log
    executors = list((tmp_path / "worker" / result.app_id).iterdir())
    assert len(executors) == 2  # cores split over num_executors executors


def test_a_failing_segment_is_reported_with_its_log(tmp_path: Path) -> None:
    backend = backend_for(tmp_path)
    from pipetune.errors import SegmentFailed

    bad = request(tmp_path, "t0", {"cores": "1"}, 1, hps={**HPS, "batch_size": -5})
    with pytest.raises(SegmentFailed) as info:
        backend.run_segment(bad, lambda e: None)
    assert "exited with status" in str(info.value)
    assert not (tmp_path / "t0" / "checkpoint").exists()
