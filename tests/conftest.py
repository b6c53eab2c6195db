"""Shared fixtures: a project directory with a valid config, written per test; perf."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.machine import require_tool

ROOT = Path(__file__).resolve().parents[1]


def write_project(
    tmp: Path, conf: dict[str, Any] | None = None, app: dict[str, Any] | None = None
) -> Path:
    """A minimal project in `tmp`: the real app script, an app config and pipetune.conf."""
    app_dir = tmp / "applications" / "lenet5"
    app_dir.mkdir(parents=True, exist_ok=True)
    for source in (ROOT / "applications" / "lenet5").glob("*.py"):
        shutil.copy(source, app_dir / source.name)
    (app_dir / "lenet5.py").touch()
    # the machinery the BigDL apps share, beside the app as in the repository
    shutil.copytree(
        ROOT / "applications" / "bigdl_app",
        app_dir.parent / "bigdl_app",
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    app_conf = {
        "name": "lenet5",
        "master": "local[2]",
        "driver_memory": "2g",
        "conf": "applications/lenet5/lenet5.py",
        "extras": {"trainSize": 600, "seed": 0},
        "hyperParameterFlags": {
            "batch_size": "batchSize",
            "learning_rate": "learningRate",
            "learning_rate_decay": "learningRateDecay",
        },
        "timeout_s": 600,
    }
    app_conf.update(app or {})
    (tmp / "bigdl" / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "bigdl" / "config" / "app.json").write_text(json.dumps(app_conf))
    config = {
        "bigdlConf": "bigdl/config/app.json",
        "systemParameters": {"cores": ["2", "1"], "memory": ["2g", "1g"]},
        "hyperParameters": {
            "batch_size": [32, 64, 128],
            "learning_rate": [0.01, 0.05, 0.1],
            "learning_rate_decay": [0.0, 0.001],
        },
        "search": {"trials": 2, "epochs": 3, "seed": 1},
    }
    config.update(conf or {})
    path = tmp / "pipetune.conf"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path)


@pytest.fixture
def perf_installed() -> str:
    """`perf`, which CI installs (scripts/install-system-deps.sh): its absence fails there."""
    return require_tool("perf", "apt-get install linux-perf")


# The longest spark test takes ~65 s alone on 2 CPUs (two pipetune runs); room for a busy machine.
SPARK_TIMEOUT_S = 600


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: it must see the added mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every spark test is also slow, so `-m "not slow"` leaves out all real training, and
    has SPARK_TIMEOUT_S rather than the fast tests' limit unless it sets its own."""
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.slow)
            if not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(SPARK_TIMEOUT_S))
