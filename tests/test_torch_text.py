"""The text apps on PyTorch (applications/news20/text{cnn,lstm}_torch.py), run as real
processes: the contract and the hyperparameter echo, a resume with the optimizer state, the
data the BigDL apps train on, their configs, and each one tuned by `pipetune --config` with
live cores, and trained by its TorchDistributor launcher (those two marked `spark`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pipetune import contract
from pipetune.config import load_config
from tests.conftest import ROOT
from tests.test_cli_run import only_run_dir, pipetune
from tests.test_news20_data import write_glove, write_news20
from tests.test_torch_app import app_env, named, run_app

NEWS20 = ROOT / "applications" / "news20"
sys.path[:0] = [str(NEWS20), str(NEWS20.parent)]

import text_data  # noqa: E402
import textapp  # noqa: E402  (the BigDL apps' data plan)
import textapp_torch  # noqa: E402
import torch  # noqa: E402
from textcnn import TextCNN as BigdlCNN  # noqa: E402
from torch_app import flags as torch_flags  # noqa: E402
from torch_app.digest import digest  # noqa: E402

APPS = ("textcnn_torch", "textlstm_torch")
SHAPE = {"textcnn_torch": "filters", "textlstm_torch": "hiddenSize"}
# 480 training documents of 48 words, 16 wide: 15 iterations an epoch at batch 32
TINY = ["--docs", "600", "--sequenceLength", "48", "--embeddingDim", "16"]


def app(name: str, tmp_path: Path, *flags: str, checkpoint: str = "ckpt") -> list[str]:
    script = NEWS20 / f"{name}.py"
    return [sys.executable, str(script), *TINY, *flags, "--checkpoint", str(tmp_path / checkpoint)]


def expected_hyperparameters(name: str, **given: Any) -> dict[str, Any]:
    """What the BigDL app echoes for the same flags (textapp.py)."""
    rate = 0.05 if name == "textcnn_torch" else 0.2
    hp = {"batchSize": 32, "learningRate": rate, "learningRateDecay": 0.0, "momentum": 0.9}
    return {**hp, "embeddingDim": 16, SHAPE[name]: 64, "seed": 0, **given}


# ------------------------------------------------------------------ a plain process


@pytest.mark.parametrize("name", APPS)
def test_a_text_segment_speaks_the_contract(tmp_path: Path, name: str) -> None:
    flags = ["--epochs", "2", "--learningRateDecay", "0.001"]
    code, events, err = run_app(app(name, tmp_path, *flags))
    assert code == 0, err
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end"]
    start, first, second, _ = events
    hp = expected_hyperparameters(name, learningRateDecay=0.001)
    assert start["hyperparameters"] == hp
    assert (start["engine"], start["data_source"], start["classes"]) == ("torch", "synthetic", 20)
    assert (start["train_samples"], start["val_samples"]) == (480, 120)
    assert start["vocabulary"] > 100 and start["windows"] is True
    for epoch in (first, second):
        assert epoch["hyperparameters"] == hp and epoch["iterations"] == 15
        assert epoch["samples"] == 480 and 0 <= epoch["accuracy"] <= 1
    assert second["loss"] < first["loss"]
    meta = contract.read_meta(tmp_path / "ckpt")
    assert meta is not None and (meta["epochs_done"], meta["step"]) == (2, 30)
    bigdl_plan = textapp.TextPlan("textcnn", BigdlCNN().parse_args(segment_flags()))
    assert meta["data"] == bigdl_plan.identity()  # the data named as the BigDL apps name it


def momentum_of(checkpoint: Path) -> list[Any]:
    state = torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"]
    return [state[i]["momentum_buffer"] for i in sorted(state)]


@pytest.mark.slow
def test_a_resumed_text_segment_goes_on_with_its_optimizer_state(tmp_path: Path) -> None:
    """1 epoch, then 1 more from the checkpoint, ends where 2 in one go end: momentum, step
    and dropout's draws survive the checkpoint (the LSTM, with its dropout head)."""
    one = ["--cores", "1", "--batchSize", "64"]  # 8 iterations an epoch
    name = "textlstm_torch"
    code, first, err = run_app(app(name, tmp_path, *one, "--epochs", "1"))
    assert code == 0, err
    saved = momentum_of(tmp_path / "ckpt")
    code, resumed, err = run_app(app(name, tmp_path, *one, "--epochs", "1"))
    assert code == 0, err
    start = resumed[0]
    assert start["start_epoch"] == 1 and [e["epoch"] for e in named(resumed, "epoch")] == [2]
    assert start["optimizer_state"] == {"step": 8, "momentum": digest(saved)}
    assert start["weights"] != first[0]["weights"]
    code, straight, err = run_app(app(name, tmp_path, *one, "--epochs", "2", checkpoint="whole"))
    assert code == 0, err
    resumed_model = torch.load(tmp_path / "ckpt" / "model.pt", weights_only=True)
    whole_model = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    assert all(torch.equal(resumed_model[k], whole_model[k]) for k in whole_model)
    assert digest(momentum_of(tmp_path / "ckpt")) == digest(momentum_of(tmp_path / "whole"))
    assert named(resumed, "epoch")[0]["loss"] == named(straight, "epoch")[1]["loss"]


def test_bad_text_flags_are_named_before_anything_starts(tmp_path: Path) -> None:
    flags = ["--epochs", "1", "--filters", "0", "--sequenceLength", "3"]
    code, events, _ = run_app(app("textcnn_torch", tmp_path, *flags))
    assert code == 2
    (error,) = named(events, "error")
    assert "--filters must be >= 1" in error["message"]
    assert "--sequenceLength must be >= 5" in error["message"]
    code, events, _ = run_app(app("textlstm_torch", tmp_path, "--epochs", "1", "--newsDir", "x"))
    assert code == 1 and "bad text data" in named(events, "error")[0]["message"]


# ------------------------------------------------------------------ the same data


def bigdl_samples(plan: textapp.TextPlan, partitions: int) -> tuple[np.ndarray, ...]:
    """What the BigDL app's partitions hold, in partition order, made by its own sample code
    (the embedding matrix in a stand-in for Spark's broadcast, which has just `.value`)."""
    data, out = plan.data, []
    matrix = SimpleNamespace(value=data.embeddings)
    for ids, labels in ((data.train_ids, data.train_labels), (data.val_ids, data.val_labels)):
        samples = [
            s
            for c in text_data.chunks(ids, labels, partitions)
            for s in text_data.embedded_samples(matrix, c)
        ]
        out.append(np.stack([s.features[0].to_ndarray() for s in samples]))
        out.append(np.array([int(s.labels[0].to_ndarray().ravel()[0]) for s in samples]))
    return tuple(out)


def segment_flags(*flags: str) -> list[str]:
    return ["--epochs", "1", "--checkpoint", "c", *TINY, *flags]


def torch_plan_of(flags: list[str]) -> textapp_torch.TextPlan:
    return textapp_torch.TextPlan(torch_flags.parse_args(textapp_torch.TextCNN(), flags))


def test_the_same_seed_gives_the_same_text_on_both_engines() -> None:
    flags = segment_flags("--docs", "200", "--seed", "3")
    bigdl = textapp.TextPlan("textcnn", BigdlCNN().parse_args(flags))
    torch_plan = torch_plan_of(flags)
    assert torch_plan.identity() == bigdl.identity()
    for ranks in (1, 2):
        train_x, train_y, val_x, val_y = bigdl_samples(bigdl, ranks)  # local[ranks]
        shards = [torch_plan.load(r, ranks) for r in range(ranks)]
        np.testing.assert_array_equal(np.concatenate([s.train_x for s in shards]), train_x)
        np.testing.assert_array_equal(np.concatenate([s.train_y for s in shards]), train_y - 1)
        np.testing.assert_array_equal(np.concatenate([s.val_x for s in shards]), val_x)
        np.testing.assert_array_equal(np.concatenate([s.val_y for s in shards]), val_y - 1)
        assert all(s.train_samples == len(train_y) for s in shards)
    reseeded = torch_plan_of(segment_flags("--docs", "200", "--seed", "4")).load()
    assert not np.array_equal(reseeded.train_x, train_x)


def test_news20_and_glove_files_give_the_same_arrays_on_both_engines(tmp_path: Path) -> None:
    root = tmp_path / "20news-bydate"
    common = "a b c d e f g h i j " * 5  # the 10 most frequent words: left out
    texts = [common + "orbit moon moon", common + "moon rocket", common + "engine oil", common]
    write_news20(root / "20news-bydate-train", {"sci": texts[:2], "autos": texts[2:]})
    write_news20(root / "20news-bydate-test", {"sci": ["rocket moon"], "autos": ["oil wheel"]})
    glove = write_glove(tmp_path / "glove.txt", {"moon": [1, 0], "oil": [0, 1]})
    files = ["--newsDir", str(root), "--gloveFile", str(glove), "--embeddingDim", "2"]
    flags = segment_flags(*files, "--sequenceLength", "8", "--maxWords", "100")
    bigdl = textapp.TextPlan("textcnn", BigdlCNN().parse_args(flags))
    torch_plan = torch_plan_of(flags)
    assert torch_plan.identity() == bigdl.identity() and torch_plan.source == "news20"
    train_x, train_y, val_x, val_y = bigdl_samples(bigdl, 2)
    shards = [torch_plan.load(r, 2) for r in range(2)]
    np.testing.assert_array_equal(np.concatenate([s.train_x for s in shards]), train_x)
    np.testing.assert_array_equal(np.concatenate([s.train_y for s in shards]), train_y - 1)
    np.testing.assert_array_equal(np.concatenate([s.val_x for s in shards]), val_x)
    np.testing.assert_array_equal(np.concatenate([s.val_y for s in shards]), val_y - 1)
    assert train_x.shape == (4, 8, 2) and train_x[0, -1].tolist() == [0, 1]  # autos: "oil"


@pytest.mark.parametrize("name", APPS)
def test_the_shipped_torch_text_configs_load(name: str) -> None:
    app_name = name.removesuffix("_torch")
    config = load_config(ROOT / f"pipetune-{app_name}-torch.conf")
    bigdl = load_config(ROOT / f"pipetune-{app_name}.conf")
    assert config.app.name == name and config.app.engine.value == "torch"
    assert config.app.script == NEWS20 / f"{name}.py"
    assert config.app.torch.launcher == NEWS20 / f"{name}_distributor.py"
    assert config.app.hyperparameter_flags == bigdl.app.hyperparameter_flags
    assert config.app.extras == bigdl.app.extras  # the same data as the BigDL app's


# ------------------------------------------------------------------ tuned, and launched


def write_text_project(tmp: Path, name: str) -> Path:
    """The shipped torch text app config and conf in `tmp` (the scripts stay where they are),
    at a tiny size: 640 training documents, 20 or 40 iterations an epoch."""
    app_conf = json.loads((ROOT / "bigdl" / "config" / f"{name}.json").read_text())
    app_conf["conf"] = str(NEWS20 / f"{name}.py")
    app_conf["launcher"] = str(NEWS20 / f"{name}_distributor.py")
    app_conf["extras"] = {"docs": 800, "sequenceLength": 48, "embeddingDim": 16, "seed": 0}
    (tmp / "app.json").write_text(json.dumps(app_conf))
    conf = json.loads((ROOT / f"pipetune-{name.removesuffix('_torch')}-torch.conf").read_text())
    shape = "filters" if name == "textcnn_torch" else "hidden_size"
    rates = [0.05, 0.1] if name == "textcnn_torch" else [0.2, 0.3]
    conf["bigdlConf"] = "app.json"
    conf["hyperParameters"] = {"batch_size": [16, 32], "learning_rate": rates, shape: [16, 32]}
    # 3 epochs: a trial of n epochs probes n - 1 candidates (probing/plan.py); the windows
    # (2 + 4 iterations, up to 30 % of an epoch) follow the first at the launch's setting
    conf["search"] = {"trials": 2, "epochs": 3, "seed": 7}
    conf["probing"] = {**conf["probing"], "window_warmup": 2, "window_min": 4}
    path = tmp / "pipetune.conf"
    path.write_text(json.dumps(conf))
    return path


@pytest.mark.spark
@pytest.mark.parametrize("name", APPS)
def test_a_torch_text_app_is_tuned_with_live_cores(tmp_path: Path, name: str) -> None:
    run = pipetune("--config", str(write_text_project(tmp_path, name)), "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "finished" and len(summary["trials"]) == 2
    for trial in summary["trials"]:
        assert trial["status"] == "done" and trial["epochs"] == 3 and trial["accuracy"] > 0
        system = trial["system"]
        assert system["source"] == "probed"
        assert {p["setting"]["cores"] for p in system["probes"]} == {"1", "2"}
        # both core counts ran in the one process: the switch between them was live
        assert trial["processes"] == 1 and system["switches"]
        assert all(s["how"] == "live" for s in system["switches"])
    assert summary["trials"][1]["reused_processes"] == 1  # the first trial's process


@pytest.mark.spark
@pytest.mark.parametrize("name", APPS)
def test_the_torch_distributor_launcher_trains_a_text_app(tmp_path: Path, name: str) -> None:
    """Two processes in local mode, cores 1 from the first pause: each rank trains its half
    of the documents (batch 64: 32 each, 8 iterations an epoch)."""
    from pipetune.spark_env import discover

    decisions = tmp_path / "decision.json"
    launcher = [sys.executable, str(NEWS20 / f"{name}_distributor.py"), "--processes", "2"]
    flags = ["--batchSize", "64", "--epochs", "2", "--decisionFile", str(decisions)]

    def cores_one(pause: dict[str, Any]) -> contract.Decision:
        return contract.Decision(pause["epoch"], True, {"cores": 1}, iteration=pause["iteration"])

    env = app_env(base=discover().process_env(loopback=True))
    argv = [*launcher, *app(name, tmp_path, *flags)[2:]]
    code, events, err = run_app(argv, cores_one, decisions, env, timeout=300)
    assert code == 0, err[-3000:]
    assert [e["event"] for e in events] == ["start", "pause", "epoch", "epoch", "end"]
    assert events[0]["processes"] == 2 and events[0]["train_samples"] == 480
    epochs = named(events, "epoch")
    assert all(e["iterations"] == 8 and e["system"]["cores"] == 1 for e in epochs)
    assert epochs[1]["loss"] < epochs[0]["loss"]
    assert contract.checkpoint_epochs(tmp_path / "ckpt") == 2
