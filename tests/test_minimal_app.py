"""The minimal example app of docs/APPS.md, tuned end to end through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.spark


def test_the_minimal_app_is_tuned_in_one_process(tmp_path: Path) -> None:
    (tmp_path / "bigdl" / "config").mkdir(parents=True)
    app = json.loads((ROOT / "bigdl" / "config" / "minimal.json").read_text())
    app["conf"] = "minimal.py"
    shutil.copy(ROOT / "applications" / "minimal" / "minimal.py", tmp_path / "minimal.py")
    (tmp_path / "bigdl" / "config" / "minimal.json").write_text(json.dumps(app))
    conf = {
        "bigdlConf": "bigdl/config/minimal.json",
        "systemParameters": {"cores": ["1", "2"]},
        "hyperParameters": {"learning_rate": [0.5]},
        "search": {"sampler": "grid", "trials": 1, "epochs": 3, "seed": 0},
        # recognition keys its knowledge by batch size, which this app does not have
        "clustering": {"enabled": False},
    }
    (tmp_path / "pipetune.conf").write_text(json.dumps(conf))
    run = subprocess.run(
        [sys.executable, "-m", "pipetune", "--config", "pipetune.conf", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (summary_path,) = tmp_path.glob("runs/*/summary.json")
    trial = json.loads(summary_path.read_text())["trials"][0]
    assert trial["status"] == "done" and trial["accuracy"] > 0.8
    assert trial["processes"] == 1  # the probes and the training, in one process
    assert [p["setting"]["cores"] for p in trial["system"]["probes"]][:2] == ["1", "2"]
    assert [s["how"] for s in trial["system"]["switches"]] == ["live"] * len(
        trial["system"]["switches"]
    )
    assert trial["system"]["switches"], "cores 1 → 2 is a live switch"
