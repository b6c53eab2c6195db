"""The PyTorch LeNet-5 app (applications/lenet5_torch), run as real processes and read through
the contract's parser: events, echoes, checkpoint and resume, live threads, windows, reuse,
the data shared with the BigDL app, and its TorchDistributor launcher (local mode and a
loopback standalone cluster, both marked `spark`)."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from pipetune import contract
from pipetune.contract import Decision, Next, parse_event
from tests.conftest import ROOT

APP_DIR = ROOT / "applications" / "lenet5_torch"
APP = APP_DIR / "lenet5_torch.py"
LAUNCHER = APP_DIR / "distributor.py"
SMALL = ["--trainSize", "256", "--batchSize", "32"]  # 8 iterations an epoch
HPS = {
    "batchSize": 32,
    "learningRate": 0.05,
    "learningRateDecay": 0.0,
    "momentum": 0.9,
    "seed": 0,
    "trainSize": 256,
}

sys.path[:0] = [str(APP_DIR), str(APP_DIR.parent)]  # torch_lenet5, and the shared torch_app
import torch  # noqa: E402
from torch_app.batches import Batches  # noqa: E402
from torch_app.digest import digest  # noqa: E402
from torch_app.relay import RelayClient, RelayServer  # noqa: E402
from torch_app.watch import EventWatch  # noqa: E402
from torch_lenet5 import samples  # noqa: E402

Answer = Callable[[dict[str, Any]], Any]


def app_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop(contract.NEXT_FILE_ENV, None)
    env.update(extra or {})
    return env


def run_app(
    argv: list[str],
    answer: Answer | None = None,
    decision_file: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, list[dict[str, Any]], str]:
    """Run a command, answer each `pause` (write the Decision `answer` returns) and each
    `idle` (write the Next it returns) as a launcher would; its exit code, events, stderr."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or app_env()
    )
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    drain.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    events = []
    try:
        for line in proc.stdout or []:
            event = parse_event(line)
            if event is None:
                continue
            events.append(event)
            if answer is not None and event["event"] == contract.PAUSE:
                assert decision_file is not None
                contract.write_decision(decision_file, answer(event))
            if answer is not None and event["event"] == contract.IDLE:
                contract.write_next(Path(env_next(env)), answer(event))
        code = proc.wait()
    finally:
        timer.cancel()
    drain.join(5)
    return code, events, "".join(stderr)


def env_next(env: dict[str, str] | None) -> str:
    return (env or {})[contract.NEXT_FILE_ENV]


def app(tmp_path: Path, *flags: str, checkpoint: str = "ckpt") -> list[str]:
    return [sys.executable, str(APP), *SMALL, *flags, "--checkpoint", str(tmp_path / checkpoint)]


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def momentum_of(checkpoint: Path) -> list[Any]:
    state = torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"]
    return [state[i]["momentum_buffer"] for i in sorted(state)]


# ------------------------------------------------------------------ a plain process


def test_a_segment_speaks_the_contract(tmp_path: Path) -> None:
    code, events, err = run_app(app(tmp_path, "--epochs", "2"))
    assert code == 0, err
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end"]
    start, first, second, end = events
    assert start["hyperparameters"] == HPS and start["start_epoch"] == 0
    assert (start["engine"], start["processes"], start["windows"]) == ("torch", 1, True)
    assert (start["train_samples"], start["val_samples"]) == (256, 360)
    assert set(start["startup"]["phases_s"]) == {"imports", "checks", "data", "model"}
    assert start["startup"]["python_at"] > 0
    cpus = sorted(os.sched_getaffinity(0))
    for number, epoch in enumerate((first, second), start=1):
        assert epoch["epoch"] == number and epoch["hyperparameters"] == HPS
        assert epoch["iterations"] == 8 and len(epoch["iteration_s"]) == 8
        assert epoch["samples"] == 256 and 0.0 <= epoch["accuracy"] <= 1.0
        assert epoch["system"] == {"cores": len(cpus), "cpus": cpus, "processes": 1}
        assert epoch["duration_s"] >= sum(epoch["iteration_s"]) * 0.99
    assert math.isfinite(first["loss"]) and second["loss"] < first["loss"]
    assert end["epochs_done"] == 2 and end["checkpoint"] == str(tmp_path / "ckpt")
    meta = contract.read_meta(tmp_path / "ckpt")
    assert meta is not None
    assert (meta["epochs_done"], meta["step"], meta["engine"]) == (2, 16, "torch")
    assert meta["hyperparameters"] == HPS
    assert meta["data"] == {"source": "sklearn-digits", "train_samples": 256, "seed": 0}
    assert not (tmp_path / "ckpt.tmp").exists() and not (tmp_path / "ckpt.old").exists()


@pytest.mark.slow
def test_resume_continues_as_if_it_had_not_stopped(tmp_path: Path) -> None:
    """1 epoch, then 1 more from the checkpoint, ends with the weights and momentum of 2
    epochs in one go: the epoch counter, the momentum buffers, the learning-rate step and
    the place in the shuffled order all survive the checkpoint."""
    one = ["--cores", "1", "--learningRateDecay", "0.01"]
    code, first, err = run_app(app(tmp_path, *one, "--epochs", "1"))
    assert code == 0, err
    saved = momentum_of(tmp_path / "ckpt")
    code, resumed, err = run_app(app(tmp_path, *one, "--epochs", "1"))
    assert code == 0, err
    start = resumed[0]
    assert start["start_epoch"] == 1 and [e["epoch"] for e in named(resumed, "epoch")] == [2]
    assert start["optimizer_state"] == {"step": 8, "momentum": digest(saved)}
    assert start["weights"] != first[0]["weights"]  # it starts from the trained weights
    code, straight, err = run_app(app(tmp_path, *one, "--epochs", "2", checkpoint="straight"))
    assert code == 0, err
    resumed_model = torch.load(tmp_path / "ckpt" / "model.pt", weights_only=True)
    straight_model = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    assert all(torch.equal(resumed_model[k], straight_model[k]) for k in straight_model)
    assert digest(momentum_of(tmp_path / "ckpt")) == digest(momentum_of(tmp_path / "straight"))
    assert named(resumed, "epoch")[0]["loss"] == named(straight, "epoch")[1]["loss"]


@pytest.mark.slow
def test_a_checkpoint_of_another_trial_is_refused(tmp_path: Path) -> None:
    code, _, err = run_app(app(tmp_path, "--epochs", "1"))
    assert code == 0, err
    code, events, _ = run_app(app(tmp_path, "--epochs", "1", "--learningRate", "0.1"))
    assert code == 1
    (error,) = named(events, "error")
    assert "belongs to another trial" in error["message"] and "learningRate" in error["message"]
    assert not named(events, "start")


def test_bad_flags_exit_2_with_an_error_event(tmp_path: Path) -> None:
    code, events, _ = run_app(app(tmp_path, "--epochs", "1", "--batchSize", "0"))
    assert code == 2
    assert "--batchSize must be > 0" in named(events, "error")[0]["message"]


def test_live_cores_and_a_window_at_pauses(tmp_path: Path) -> None:
    """Cores 1 for epoch 1, then cores 2 for a window of 3 iterations inside epoch 2; the
    epoch it split is reported once, whole, when it ends."""
    decisions = tmp_path / "decision.json"
    answers = {
        (0, 0): {"live": {"cores": 1}, "pause_after": 1},
        (1, 8): {"live": {"cores": 2}, "iterations": 3},
        (1, 11): {},
    }

    def answer(pause: dict[str, Any]) -> Decision:
        at = (pause["epoch"], pause["iteration"])
        return Decision(at[0], True, iteration=at[1], **answers[at])  # type: ignore[arg-type]

    flags = ["--epochs", "2", "--decisionFile", str(decisions), "--cores", "2"]
    code, events, err = run_app(app(tmp_path, *flags), answer, decisions)
    assert code == 0, err
    names = [e["event"] for e in events]
    assert names == ["start", "pause", "epoch", "pause", "window", "pause", "epoch", "end"]
    assert [(p["epoch"], p["iteration"]) for p in named(events, "pause")] == list(answers)
    first, second = named(events, "epoch")
    assert first["system"]["cores"] == 1 and second["system"]["cores"] == 2
    assert second["iterations"] == 8  # 3 in the window, 5 after it
    (window,) = named(events, "window")
    assert (window["epoch"], window["epoch_iterations"], len(window["iteration_s"])) == (2, 8, 3)
    assert window["system"]["cores"] == 2
    assert window["iteration_s"] == second["iteration_s"][:3]


def test_a_setting_it_cannot_take_live_is_refused(tmp_path: Path) -> None:
    decisions = tmp_path / "decision.json"
    flags = ["--epochs", "1", "--decisionFile", str(decisions)]
    code, events, err = run_app(
        app(tmp_path, *flags), lambda p: Decision(0, True, {"memory": "1g"}), decisions
    )
    assert code == 0, err
    assert [e["event"] for e in events] == ["start", "pause", "refused", "end"]
    assert "memory" in events[2]["reason"] and events[3]["epochs_done"] == 0


def test_a_reused_process_runs_the_next_segment_afresh(tmp_path: Path) -> None:
    """The second segment keeps the data (same flags make it) and nothing else: its model
    starts from its seed, its threads from its launch."""
    env = app_env({contract.NEXT_FILE_ENV: str(tmp_path / "next.json")})
    # the launcher hands over the hyperparameters and standard flags only: the app keeps
    # the launch's extras (SMALL), so the same data is kept
    second = ["--learningRate", "0.1", "--epochs", "1"]
    second += ["--checkpoint", str(tmp_path / "other")]

    def answer(idle: dict[str, Any]) -> Next:
        return Next(idle["segments"], tuple(second) if idle["segments"] == 1 else ())

    code, events, err = run_app(app(tmp_path, "--epochs", "1"), answer, env=env)
    assert code == 0, err
    names = [e["event"] for e in events]
    assert names == ["start", "epoch", "end", "idle", "start", "epoch", "end", "idle"]
    first, again = named(events, "start")
    assert (first["reuse"], first["reused"], first["data_kept"]) == (True, 0, False)
    assert (again["reused"], again["data_kept"]) == (1, True)
    assert again["weights"] == first["weights"]  # the same seed, a fresh model
    assert again["hyperparameters"]["learningRate"] == 0.1
    assert "handover" in again["startup"]["phases_s"] and again["startup"]["python_at"] is None
    assert contract.checkpoint_epochs(tmp_path / "other") == 1


# ------------------------------------------------------------------ data and batches


def bigdl_data() -> ModuleType:
    """The BigDL app's data code, loaded as that app loads it (by its own file)."""
    path = ROOT / "applications" / "lenet5" / "data.py"
    spec = importlib.util.spec_from_file_location("bigdl_app_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_same_seed_gives_the_same_digits_on_both_engines() -> None:
    bigdl = bigdl_data()
    assert Path(samples.data.__file__) == ROOT / "applications" / "lenet5" / "data.py"
    plan = samples.DataPlan.from_flags("", 100, seed=3)
    assert plan.identity() == {"source": "sklearn-digits", "train_samples": 100, "seed": 3}
    split = bigdl.digits_split(3)
    parts = [bigdl.digits_train_partition(split, 3, 100, i, 3) for i in range(3)]  # local[3]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts]) - bigdl.LABEL_OFFSET
    vx, vy = bigdl.digits_validation(split)
    for ranks in (1, 2):
        shards = [samples.load_shard(plan, r, ranks) for r in range(ranks)]
        np.testing.assert_array_equal(np.concatenate([s.train_x for s in shards]), x)
        np.testing.assert_array_equal(np.concatenate([s.train_y for s in shards]), y)
        np.testing.assert_array_equal(np.concatenate([s.val_x for s in shards]), vx)
        np.testing.assert_array_equal(np.concatenate([s.val_y for s in shards]), vy - 1)
    other = samples.load_shard(samples.DataPlan.from_flags("", 100, seed=4))
    assert not np.array_equal(other.train_x, x)


def test_mnist_files_give_the_bigdl_apps_arrays(tmp_path: Path) -> None:
    bigdl = bigdl_data()
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (tmp_path / f"{split}-images-idx3-ubyte").write_bytes(
            b"\x00\x00\x08\x03" + np.array([n, 28, 28], ">u4").tobytes() + images.tobytes()
        )
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(
            b"\x00\x00\x08\x01" + np.array([n], ">u4").tobytes() + labels.tobytes()
        )
    plan = samples.DataPlan.from_flags(str(tmp_path), 20, seed=0)
    assert (plan.source, plan.train_size) == ("mnist-idx", 20)
    shard = samples.load_shard(plan, 1, 2)
    x, y = bigdl.mnist_partition(str(tmp_path), "train", 20, 1, 2)
    np.testing.assert_array_equal(shard.train_x, x)
    np.testing.assert_array_equal(shard.train_y, y - 1)
    vx, vy = bigdl.mnist_partition(str(tmp_path), "test", 0, 1, 2)
    np.testing.assert_array_equal(shard.val_x, vx)
    np.testing.assert_array_equal(shard.val_y, vy - 1)


def test_each_rank_takes_its_whole_shard_once_an_epoch() -> None:
    total, batch = 101, 20  # 6 iterations, the last one of a single sample
    ranks = [Batches(total, batch, seed=1, rank=r, ranks=2) for r in range(2)]
    assert [b.shard for b in ranks] == [51, 50] and ranks[0].epoch_iterations == 6
    for epoch in (0, 1):
        steps = range(epoch * 6, epoch * 6 + 6)
        for b in ranks:
            taken = np.concatenate([b.indices(s) for s in steps])
            assert sorted(taken) == list(range(b.shard))
        sizes = [sum(len(b.indices(s)) for b in ranks) for s in steps]
        assert sizes == [20, 20, 20, 20, 20, 1] == [ranks[0].global_size(s) for s in steps]
    again = Batches(total, batch, seed=1, rank=0, ranks=2)
    np.testing.assert_array_equal(again.indices(8), ranks[0].indices(8))  # a resume: same
    assert not np.array_equal(ranks[0].indices(0), ranks[0].indices(6))  # a new epoch order
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        Batches(total, batch, seed=1, rank=0, ranks=3)


# ------------------------------------------------------------------ the relay


def test_the_relay_carries_events_out_and_decisions_in(tmp_path: Path) -> None:
    """What a rank 0 on an executor and its launcher say to each other (distributor.py)."""
    out = io.StringIO()
    decisions = tmp_path / "decision.json"
    server = RelayServer("127.0.0.1", decisions, out).start()
    stdout = sys.stdout
    client = RelayClient(server.address, tmp_path / "mirror.json")
    try:
        contract.emit(contract.pause_event(1, 8))
        print("an untagged line")
        contract.write_decision(decisions, Decision(1, True, {"cores": 1}, iteration=8))
        decision = contract.await_decision(client.mirror, 1, 10, iteration=8)
    finally:
        client.close()
        server.close()
    assert sys.stdout is stdout
    assert decision == Decision(1, True, {"cores": 1}, iteration=8)
    lines = out.getvalue().splitlines()
    assert lines[0] == contract.format_event(contract.pause_event(1, 8)).strip()
    assert lines[1] == "an untagged line"
    assert parse_event(lines[2]) == contract.pause_event(1, 8)  # await_decision's own
    assert len(lines) == 3


def test_the_launcher_tells_how_the_job_ended_from_its_events() -> None:
    """pyspark's torchrun wrapper exits 0 even when training failed: the events decide."""
    out = io.StringIO()
    watch = EventWatch(out)
    end = contract.format_event(contract.end_event(2, "ckpt"))
    for piece in ("log line\n", end[:10], end[10:], "[pipetune] {broken\n"):
        watch.write(piece)
    assert out.getvalue() == "log line\n" + end + "[pipetune] {broken\n"
    assert (watch.ended, watch.failed) == (True, False)
    watch.write(contract.format_event(contract.error_event("no")))
    assert watch.failed
    assert not EventWatch(io.StringIO()).ended  # nothing came by: a failure too


# ------------------------------------------------------------------ TorchDistributor


def launcher(tmp_path: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        str(LAUNCHER),
        "--processes",
        "2",
        *flags,
        "--trainSize",
        "1024",
        "--batchSize",
        "64",
        "--epochs",
        "3",
        "--checkpoint",
        str(tmp_path / "ckpt"),
        "--decisionFile",
        str(tmp_path / "decision.json"),
    ]


def cores_one_then_go(pause: dict[str, Any]) -> Decision:
    """Cores 1 from the start, and no pause after."""
    return Decision(pause["epoch"], True, {"cores": 1}, iteration=pause["iteration"])


def check_distributed_run(tmp_path: Path, code: int, events: list[dict], err: str) -> None:
    assert code == 0, err[-3000:]
    names = [e["event"] for e in events]
    assert names == ["start", "pause", "epoch", "epoch", "epoch", "end"], names
    assert events[0]["processes"] == 2 and events[0]["hyperparameters"]["batchSize"] == 64
    epochs = named(events, "epoch")
    assert [e["system"]["cores"] for e in epochs] == [1, 1, 1]
    assert [e["system"]["processes"] for e in epochs] == [2, 2, 2]
    assert all(e["iterations"] == 16 and 0 <= e["accuracy"] <= 1 for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert epochs[-1]["accuracy"] > 0.5
    assert contract.checkpoint_epochs(tmp_path / "ckpt") == 3


@pytest.mark.spark
def test_torch_distributor_local_mode_trains_with_two_processes(tmp_path: Path) -> None:
    from pipetune.spark_env import discover

    env = app_env(base=discover().process_env(loopback=True))
    code, events, err = run_app(
        launcher(tmp_path), cores_one_then_go, tmp_path / "decision.json", env, timeout=300
    )
    check_distributed_run(tmp_path, code, events, err)
    assert events[0]["app_id"].startswith("local-")


@pytest.mark.spark
def test_torch_distributor_on_a_standalone_cluster(tmp_path: Path) -> None:
    """Rank 0 runs in an executor: its events reach the launcher's stdout, and the decision
    written beside the launcher reaches it, through the relay."""
    from pipetune.spark_env import discover
    from tests.spark_cluster import standalone_cluster

    env = app_env(base=discover().process_env(loopback=True))
    with standalone_cluster(tmp_path) as master:
        code, events, err = run_app(
            launcher(tmp_path, "--master", master),
            cores_one_then_go,
            tmp_path / "decision.json",
            env,
            timeout=300,
        )
        # the checkpoint is another trial's now: rank 0's error comes back the same way
        other = [*launcher(tmp_path, "--master", master), "--learningRate", "0.1"]
        failed, failure, _ = run_app(other, env=env, timeout=300)
    check_distributed_run(tmp_path, code, events, err)
    assert failed == 1
    assert "belongs to another trial" in named(failure, "error")[0]["message"]
    app_id = events[0]["app_id"]
    assert app_id.startswith("app-")
    assert len(list((tmp_path / "worker" / app_id).iterdir())) >= 1  # it ran on executors
    assert json.loads((tmp_path / "ckpt" / "meta.json").read_text())["step"] == 48
