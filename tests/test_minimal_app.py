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
        "search": {"sampler": "grid", "trials": 1, "epochs": 4, "seed": 0},
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
    # It cannot pause inside an epoch (its `start` does not say "windows"), so the window
    # probes it is asked for after its warm-up epoch at cores=2 become whole epochs: cores=2
    # (the setting it runs, first), then the default live.
    probes = trial["system"]["probes"]
    assert [(p["setting"]["cores"], p["epoch"], p["how"]) for p in probes] == [
        ("2", 2, "live"),
        ("1", 3, "live"),
    ]
    assert [s["how"] for s in trial["system"]["switches"]] == ["live"] * len(
        trial["system"]["switches"]
    )
    assert trial["system"]["switches"], "cores 1 → 2 is a live switch"
