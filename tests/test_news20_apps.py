"""The text apps (applications/news20): their flags and checks, the shipped configs, and each
one tuned end to end by the `pipetune` command on real BigDL, cold then recurring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipetune.config import load_config
from pipetune.contract import parse_event

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "applications"
sys.path[:0] = [str(APPS / "news20"), str(APPS)]

from bigdl_app.errors import AppError  # noqa: E402
from textapp import TextPlan  # noqa: E402
from textcnn import TextCNN  # noqa: E402

SHAPE = {"textcnn": ("filters", "filters"), "textlstm": ("hidden_size", "hiddenSize")}


# ------------------------------------------------------------------- flags and checks


def run_app(app: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """The app script itself, as spark-submit would start it (bad flags end it first)."""
    return subprocess.run(
        [sys.executable, str(APPS / "news20" / f"{app}.py"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_flags_are_all_named_before_spark_starts() -> None:
    done = run_app(
        "textcnn", "--epochs", "1", "--checkpoint", "c", "--filters", "0", "--sequenceLength", "3"
    )
    assert done.returncode == 2
    events = [e for e in map(parse_event, done.stdout.splitlines()) if e]
    (error,) = events
    assert "--filters must be >= 1" in error["message"]
    assert "--sequenceLength must be >= 5" in error["message"]
    done = run_app("textlstm", "--epochs", "1", "--checkpoint", "c", "--docs", "3")
    assert done.returncode == 2 and "synthetic corpus: docs 3" in done.stdout
    assert "textlstm: error:" in done.stderr


def flags_for(*argv: str) -> Any:
    return TextCNN().parse_args(["--epochs", "1", "--checkpoint", "c", *argv])


def test_missing_or_mismatched_files_fail_before_spark(tmp_path: Path) -> None:
    with pytest.raises(AppError, match=r"bad text data: .*not a directory"):
        TextPlan("textcnn", flags_for("--newsDir", str(tmp_path / "none")))
    glove = tmp_path / "glove.6B.50d.txt"
    glove.write_text("the " + " ".join(["0.1"] * 50) + "\n")
    with pytest.raises(AppError, match="vectors of 50 values, not --embeddingDim 16"):
        TextPlan("textcnn", flags_for("--gloveFile", str(glove), "--embeddingDim", "16"))
    # '{dim}' picks the file of the width asked for
    named = flags_for("--gloveFile", str(tmp_path / "glove.6B.{dim}d.txt"), "--embeddingDim", "50")
    assert TextPlan("textcnn", named).text.glove_file == glove


def test_the_data_identity_names_what_the_data_is_made_from() -> None:
    plan = TextPlan("textcnn", flags_for("--docs", "300"))
    identity = plan.identity()
    assert identity["source"] == "synthetic" and identity["docs"] == 300
    assert identity["embedding"] == "cooccurrence" and identity["embedding_dim"] == 50
    wider = TextPlan("textcnn", flags_for("--docs", "300", "--embeddingDim", "32"))
    assert wider.key(2) != plan.key(2) and plan.key(2) == plan.key(2) != plan.key(3)


@pytest.mark.parametrize("app", ["textcnn", "textlstm"])
def test_the_shipped_configs_load(app: str) -> None:
    config = load_config(ROOT / f"pipetune-{app}.conf")
    assert config.app.name == app and config.app.script == APPS / "news20" / f"{app}.py"
    shape, flag = SHAPE[app]
    assert config.app.hyperparameter_flags[shape] == flag
    assert {"batch_size", "learning_rate", shape} <= set(config.app.hyperparameter_flags)


# ------------------------------------------------------------------------ end to end

TINY = {"docs": 600, "sequenceLength": 48, "embeddingDim": 16, "seed": 0}


def write_text_project(tmp: Path, app: str) -> Path:
    """The shipped app and conf in `tmp`, at a tiny size: 480 training documents."""
    for name in ("news20", "bigdl_app"):
        shutil.copytree(
            APPS / name, tmp / "applications" / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    app_conf = json.loads((ROOT / "bigdl" / "config" / f"{app}.json").read_text())
    app_conf["extras"] = TINY
    (tmp / "bigdl" / "config").mkdir(parents=True)
    (tmp / "bigdl" / "config" / f"{app}.json").write_text(json.dumps(app_conf))
    conf = json.loads((ROOT / f"pipetune-{app}.conf").read_text())
    shape, _ = SHAPE[app]
    rates = [0.05, 0.1] if app == "textcnn" else [0.2, 0.3]
    conf["hyperParameters"] = {"batch_size": [32, 64], "learning_rate": rates, shape: [16, 32]}
    conf["search"] = {"trials": 2, "epochs": 3, "seed": 7}  # two batch sizes, two widths
    # epochs of 8-15 iterations: windows of 2 + 4 fit twice at least
    conf["probing"] = {**conf["probing"], "window_warmup": 2, "window_min": 4}
    # epochs of ~1 s make noisy profiles: the tolerance LeNet-5's test takes (test_cli_run.py)
    conf["clustering"] = {"path": "model.json", "tolerance": 2.0}
    path = tmp / f"pipetune-{app}.conf"
    path.write_text(json.dumps(conf))
    return path


def pipetune(conf: Path) -> list[dict[str, Any]]:
    """Run `pipetune --config conf`; the trials of its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "pipetune", "--config", str(conf), "--quiet"],
        cwd=conf.parent,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    latest = max((conf.parent / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    summary = json.loads(latest.read_text())
    assert summary["status"] == "finished"
    return summary["trials"]


def start_events(root: Path) -> list[dict[str, Any]]:
    logs = sorted(root.glob("runs/*/trials/*/segment-*.log"))
    events = (parse_event(line) for log in logs for line in log.read_text().splitlines())
    return [e for e in events if e and e["event"] == "start"]


@pytest.mark.spark
@pytest.mark.parametrize("app", ["textcnn", "textlstm"])
def test_a_text_app_is_tuned_cold_then_recognised_when_it_recurs(tmp_path: Path, app: str) -> None:
    conf = write_text_project(tmp_path, app)
    before = pipetune(conf)
    # every segment trains on the configured data, in a reused process too (the launch's
    # extras are not handed over again: bigdl_app.flags.next_segment_argv keeps them)
    starts = start_events(tmp_path)
    assert any(s["reused"] for s in starts)
    assert {(s["train_samples"], s["hyperparameters"]["embeddingDim"]) for s in starts} == {
        (480, 16)
    }
    assert (tmp_path / "model.json").is_file()
    for trial in before:
        assert trial["status"] == "done" and trial["epochs"] == 3
        assert trial["system"]["source"] == "probed" and trial["probe_windows"] >= 2
        assert trial["processes"] == 1 and trial["accuracy"] > 0
    after = pipetune(conf)
    # what the first run found best, per batch size (the knowledge table's cells)
    best = {t["hyperparameters"]["batch_size"]: t["system"]["chosen"] for t in before}
    for old, new in zip(before, after, strict=True):
        assert new["hyperparameters"] == old["hyperparameters"]  # same seed, same trials
        assert new["status"] == "done" and new["epochs"] == 3
        assert new["recognition"]["hit"], new["recognition"]
        assert new["system"]["source"] == "recognized" and new["system"]["probes"] == []
        assert new["recognition"]["setting"] == best[new["hyperparameters"]["batch_size"]]
