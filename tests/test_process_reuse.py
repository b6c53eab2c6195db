"""Reuse of a job's process across trials: as correct as a fresh process, and cheaper.

Real BigDL training through spark-submit. The app says in each `start` which weights it
starts from (a digest), its optimizer state, and whether it kept its data; the tests compare
a reused process with fresh ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipetune.backends.spark import SparkSubmitBackend
from pipetune.config import load_config
from pipetune.contract import parse_event
from pipetune.records import Decision, Role, SegmentRequest, SegmentResult, SystemSetting
from pipetune.spark_env import discover
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel
from tests.conftest import write_project

pytestmark = pytest.mark.spark
# seed and data size as hyperparameters, so that trials differing in them may share a process
APP = {
    "extras": {},
    "hyperParameterFlags": {
        "batch_size": "batchSize",
        "learning_rate": "learningRate",
        "seed": "seed",
        "train_size": "trainSize",
    },
}
A = {"batch_size": 32, "learning_rate": 0.05, "seed": 0, "train_size": 640}
B = {"batch_size": 64, "learning_rate": 0.1, "seed": 0, "train_size": 640}  # a's data
C = {"batch_size": 32, "learning_rate": 0.05, "seed": 7, "train_size": 768}  # other data
CONF = {"hyperParameters": {name: sorted({A[name], B[name], C[name]}) for name in A}}
CORES2 = SystemSetting.of({"cores": "2"})


def backend_for(tmp_path: Path, reuse: bool) -> SparkSubmitBackend:
    cfg = load_config(write_project(tmp_path, CONF, {**APP, "reuseProcess": reuse}))
    return SparkSubmitBackend(
        cfg.app, discover(), EnergySource(CpuPowerModel(10.0, 5.0)), cwd=tmp_path
    )


def segment(
    backend: SparkSubmitBackend, tmp_path: Path, trial: str, hps: dict[str, Any], epochs: int = 1
) -> tuple[SegmentResult, dict[str, Any]]:
    """Run one segment; its result and the app's `start` event."""
    log = tmp_path / trial / "seg.log"
    if log.exists():
        log.rename(log.with_suffix(f".{len(list(log.parent.glob('seg.*')))}.log"))
    request = SegmentRequest(
        trial, CORES2, epochs, Role.TRAIN, hps, str(tmp_path / trial / "ckpt"), str(log)
    )
    result = backend.run_segment(request, lambda *a: None)
    events = [e for e in map(parse_event, log.read_text().splitlines()) if e]
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1, "one start per segment, in the segment's own log"
    return result, starts[0]


def test_a_reused_process_starts_each_trial_from_its_own_seed_and_weights(tmp_path: Path) -> None:
    reused = backend_for(tmp_path / "reused", reuse=True)
    try:
        _, a = segment(reused, tmp_path / "reused", "a", A, epochs=2)
        b_result, b = segment(reused, tmp_path / "reused", "b", B)
        c_result, c = segment(reused, tmp_path / "reused", "c", C)
        # a's segment goes on in its process: the same Spark application, one more segment
        assert (a["reused"], b["reused"], c["reused"]) == (0, 1, 2)
        assert a["app_id"] == b["app_id"] == c["app_id"]
        assert b["data_kept"] is True and b["train_samples"] == 640  # same data: kept
        assert c["data_kept"] is False and c["train_samples"] == 768  # other data: made anew
    finally:
        reused.close()

    fresh = backend_for(tmp_path / "fresh", reuse=False)
    fresh_b_result, fresh_b = segment(fresh, tmp_path / "fresh", "b", B)
    _, fresh_c = segment(fresh, tmp_path / "fresh", "c", C)
    fresh.close()
    assert fresh_b["app_id"] != fresh_c["app_id"] and fresh_c["reused"] == 0

    # each trial starts from the weights of its own seed, exactly as in a fresh process, and
    # never from the trained weights of the trial before; its optimizer starts anew
    assert b["weights"] == fresh_b["weights"] and c["weights"] == fresh_c["weights"]
    assert b["weights"] == a["weights"]  # a's seed: a's start, not a's end
    assert c["weights"] != a["weights"]  # another seed
    for start in (a, b, c, fresh_b, fresh_c):
        assert start["start_epoch"] == 0 and start["optimizer_state"]["neval"] in (None, 1)
    # every hyperparameter reached the reused process (it echoes what it parsed)
    assert b_result.epochs[0].echoed["batchSize"] == 64
    assert b_result.epochs[0].echoed["learningRate"] == pytest.approx(0.1)
    # and it learns as a fresh one does: the same mean training loss over its first epoch
    # (BigDL's shuffling is not seeded; after 10 iterations the accuracy still swings by 0.2
    # between runs, the loss by well under 5 %), well above chance (0.1) in accuracy
    reused_loss, fresh_loss = b_result.epochs[0].loss, fresh_b_result.epochs[0].loss
    assert reused_loss is not None and fresh_loss is not None
    assert abs(reused_loss - fresh_loss) < 0.05 * fresh_loss
    assert b_result.epochs[0].accuracy > 0.2 and c_result.epochs[0].accuracy > 0.2

    # the reused start-up has no launch and no Spark context: a handover, data, model
    phases = b_result.startup_phases
    assert "launch" not in phases and "spark context" not in phases
    assert "handover" in phases and phases["data"] < 0.5
    assert b_result.startup_s < fresh_b_result.startup_s


def test_a_trial_resumed_from_its_checkpoint_in_a_reused_process(tmp_path: Path) -> None:
    """A segment that continues a trial (a restart) in the process of another trial: it loads
    the trial's own checkpoint, and a different launch (memory) gets a new process."""
    backend = backend_for(tmp_path, reuse=True)
    try:
        _, a1 = segment(backend, tmp_path, "a", A)
        segment(backend, tmp_path, "b", B)
        a2_result, a2 = segment(backend, tmp_path, "a", A)
        assert a2["reused"] == 2 and a2["start_epoch"] == 1
        assert a2["weights"] != a1["weights"]  # a's weights after its epoch 1
        assert [e.epoch for e in a2_result.epochs] == [2]
        meta = json.loads((tmp_path / "a" / "ckpt" / "meta.json").read_text())
        assert meta["epochs_done"] == 2 and meta["hyperparameters"]["batchSize"] == 32
        # a stop at a pause ends the segment, not the process
        stop = SegmentRequest(
            "d",
            CORES2,
            2,
            Role.PROBE,
            B,
            str(tmp_path / "d" / "ckpt"),
            str(tmp_path / "d.log"),
            decide_after=1,
        )
        stopped = backend.run_segment(stop, lambda *a: None, lambda p: Decision(None))
        assert [e.epoch for e in stopped.epochs] == [1]
        _, b2 = segment(backend, tmp_path, "b", B)
        assert b2["reused"] == 4 and b2["start_epoch"] == 1
    finally:
        backend.close()
    assert backend._idle is None
