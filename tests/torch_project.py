"""A project whose app config runs the bundled PyTorch LeNet-5 (engine `torch`), written per
test: the scripts stay where they are (absolute paths), the configs go to the test's dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

TORCH_APP = ROOT / "applications" / "lenet5_torch"


def write_torch_project(
    tmp: Path, conf: dict[str, Any] | None = None, app: dict[str, Any] | None = None
) -> Path:
    """pipetune.conf and its torch app config in `tmp`: 1,024 digits (16 iterations of 64),
    cores 2 then 1, 2 trials × 3 epochs."""
    app_conf: dict[str, Any] = {
        "name": "lenet5_torch",
        "engine": "torch",
        "conf": str(TORCH_APP / "lenet5_torch.py"),
        "launcher": str(TORCH_APP / "distributor.py"),
        "processes": 1,
        "extras": {"trainSize": 1024, "seed": 0},
        "hyperParameterFlags": {
            "batch_size": "batchSize",
            "learning_rate": "learningRate",
            "learning_rate_decay": "learningRateDecay",
        },
        "timeout_s": 300,
    }
    app_conf.update(app or {})
    (tmp / "app.json").write_text(json.dumps(app_conf))
    config: dict[str, Any] = {
        "bigdlConf": "app.json",
        "systemParameters": {"cores": ["2", "1"]},
        "hyperParameters": {
            "batch_size": [64, 128],
            "learning_rate": [0.05, 0.1],
            "learning_rate_decay": [0.0, 0.001],
        },
        "search": {"trials": 2, "epochs": 3, "seed": 3},
        # epochs of 8-16 iterations: windows of 2 + 4 fit
        "probing": {"window_warmup": 2, "window_min": 4},
    }
    config.update(conf or {})
    path = tmp / "pipetune.conf"
    path.write_text(json.dumps(config))
    return path
