"""The torch engine without training: its app config, its command lines, what a live setting
means for its jobs, the backend chosen by engine, `doctor` and `--dry-run`; and a stand-in
app (no torch) run through the torch backend: launched, then reused with its launch's flags."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipetune.backends.torch_backend import TorchBackend, TorchEnvironment, TorchLive, torch_argv
from pipetune.cli import main
from pipetune.config import load_config
from pipetune.contract import parse_event
from pipetune.engines import Engine
from pipetune.errors import ConfigError
from pipetune.factory import build_backend
from pipetune.placement import Placer
from pipetune.records import ApplyMode, Role, SegmentRequest, SystemSetting
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel
from tests.conftest import ROOT, write_project
from tests.torch_project import TORCH_APP, write_torch_project

ENV = TorchEnvironment(python="/venv/bin/python", cpus=(0, 1, 2, 3), taskset="/usr/bin/taskset")
HPS = {"batch_size": 64, "learning_rate": 0.05, "learning_rate_decay": 0.0}
HP_FLAGS = ["--batchSize", "64", "--learningRate", "0.05", "--learningRateDecay", "0.0"]
CLUSTER = {"processes": 2, "master": "spark://127.0.0.1:7077"}
TWO_BY_TWO = {"systemParameters": {"cores": ["4", "2"]}}  # cores two processes can share


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def request(
    setting: dict[str, str], launch: dict[str, str] | None = None, trial: str = "t", **kw: Any
) -> SegmentRequest:
    return SegmentRequest(
        trial,
        SystemSetting.of(setting),
        2,
        Role.TRAIN,
        kw.pop("hps", HPS),
        kw.pop("checkpoint", "c"),
        kw.pop("log", "l"),
        launch=SystemSetting.of(launch) if launch else None,
        **kw,
    )


# ------------------------------------------------------------------ the app config


def test_an_app_config_that_names_no_engine_is_bigdl(project: Path) -> None:
    app = load_config(project).app
    assert app.engine is Engine.BIGDL and app.settings.backend == "spark-submit"
    assert app.spark.master == "local[2]" and app.spark.driver_memory == "2g"
    with pytest.raises(TypeError, match="runs on bigdl, not torch"):
        app.torch  # noqa: B018 - the access is what is tested


def test_a_torch_app_config(tmp_path: Path) -> None:
    app = load_config(write_torch_project(tmp_path)).app
    assert app.engine is Engine.TORCH and app.settings.backend == "torch"
    assert app.torch.plain and app.torch.processes == 1 and app.torch.master == "local[1]"
    assert app.torch.launcher == TORCH_APP / "distributor.py"
    assert app.apply_mode("cores") is ApplyMode.LIVE


def test_the_shipped_torch_config_is_valid() -> None:
    config = load_config(ROOT / "pipetune-torch.conf")
    assert config.app.engine is Engine.TORCH and config.app.torch.plain
    assert [p.name for p in config.system_parameters] == ["cores"]


def test_an_unknown_engine_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = write_project(tmp_path, app={"engine": "jax"})
    assert problems(path) == [
        "app.json: $.engine: expected one of ['bigdl', 'torch'], found \"jax\""
    ]


def test_each_engine_checks_its_own_fields(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    torch = write_torch_project(
        tmp_path / "t", app={"driver_memory": "2g", "processes": 0, "master": "yarn"}
    )
    found = problems(torch)
    assert len(found) == 3, found
    assert found[0].startswith("app.json: $.driver_memory: expected one of the known keys")
    assert "app.json: $.processes: expected a whole number ≥ 1, found 0" in found
    assert any(p.startswith("app.json: $.master: expected a Spark master") for p in found)
    bigdl = write_project(tmp_path / "b", app={"processes": 2, "launcher": "run.py"})
    found = problems(bigdl)
    assert [p.split(":")[1].strip() for p in found] == ["$.processes", "$.launcher"]


def test_a_torch_app_has_no_memory_to_tune(tmp_path: Path) -> None:
    path = write_torch_project(tmp_path, {"systemParameters": {"cores": ["2"], "memory": ["2g"]}})
    assert problems(path) == [
        "$.systemParameters.memory: expected a parameter of the torch engine ['cores'] or one "
        'mapped in the app\'s systemParameterFlags, found "memory"'
    ]


def test_several_processes_need_the_launcher_and_share_the_cores(tmp_path: Path) -> None:
    conf = {"systemParameters": {"cores": ["4", "3", "0"]}}
    path = write_torch_project(tmp_path, conf, {"processes": 2, "launcher": None})
    assert problems(path) == [
        "app.json: $.launcher: expected the path of the TorchDistributor launcher (for "
        "processes > 1 or a cluster master), found nothing",
        '$.systemParameters.cores[2]: expected a whole number of cores ≥ 1, found "0"',
    ]
    path = write_torch_project(tmp_path, conf, {"processes": 2})
    assert problems(path) == [
        '$.systemParameters.cores[1]: expected a core count divisible among 2 processes, found "3"',
        '$.systemParameters.cores[2]: expected a whole number of cores ≥ 1, found "0"',
    ]


# ------------------------------------------------------------------ command lines


def test_a_plain_process_is_the_app_held_to_its_cores(tmp_path: Path) -> None:
    app = load_config(write_torch_project(tmp_path)).app
    argv = torch_argv(ENV, app, request({"cores": "1"}))
    assert argv == [
        *["/usr/bin/taskset", "-c", "0", "/venv/bin/python", str(TORCH_APP / "lenet5_torch.py")],
        *["--trainSize", "1024", "--seed", "0", "--cores", "1", *HP_FLAGS],
        *["--epochs", "2", "--checkpoint", "c"],
    ]
    # launched at the widest cores (all four CPUs: no taskset) to be placed at its setting
    wide = torch_argv(ENV, app, request({"cores": "1"}, {"cores": "4"}, log="seg.log"))
    assert wide[0] == "/venv/bin/python" and wide[wide.index("--cores") + 1] == "4"
    assert wide[-2:] == ["--decisionFile", "seg.log.decision.json"]


def test_several_processes_run_through_the_launcher(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    local = load_config(write_torch_project(tmp_path / "local", TWO_BY_TWO, {"processes": 2})).app
    argv = torch_argv(ENV, local, request({"cores": "2"}))
    launcher = [str(TORCH_APP / "distributor.py"), "--processes", "2"]
    assert argv[:9] == [
        *["/usr/bin/taskset", "-c", "0,1", "/venv/bin/python"],
        *launcher,
        *["--master", "local[1]"],
    ]
    # the launcher starts its own app with the app's flags: extras, threads, the segment's
    assert argv[9:15] == ["--trainSize", "1024", "--seed", "0", "--cores", "1"]
    assert str(TORCH_APP / "lenet5_torch.py") not in argv
    cluster = load_config(write_torch_project(tmp_path, TWO_BY_TWO, CLUSTER)).app
    argv = torch_argv(ENV, cluster, request({"cores": "4"}))
    assert argv[:6] == ["/venv/bin/python", *launcher, "--master", CLUSTER["master"]]
    assert argv[argv.index("--cores") + 1] == "2"  # never pinned: the executors' CPUs


# ------------------------------------------------------------------ live settings


class RecordingPlacer(Placer):
    name = "recording"

    def __init__(self) -> None:
        self.placed: list[tuple[str, list[int], tuple[int, ...]]] = []

    def place(self, job: str, pids: list[int], cpus: tuple[int, ...]) -> None:
        self.placed.append((job, pids, cpus))


def test_live_cores_are_each_processs_threads_and_the_job_trees_cpus(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    local = load_config(write_torch_project(tmp_path / "local", TWO_BY_TWO, {"processes": 2})).app
    placer = RecordingPlacer()
    live = TorchLive(local, (0, 1, 2, 3), placer)
    four = SystemSetting.of({"cores": "4"})
    assert live.app_values(four) == {"cores": 2}
    assert live.expected_echo(four) == {"cores": 2, "cpus": [0, 1, 2, 3]}
    said = live.place("job", SystemSetting.of({"cores": "2"}), os.getpid(), "")
    [(job, pids, cpus)] = placer.placed
    assert (job, pids[0], cpus) == ("job", os.getpid(), (0, 1))
    assert "on CPUs [0, 1] (recording)" in said
    # on a cluster the threads change and the CPUs stay the executors'
    cluster_app = load_config(write_torch_project(tmp_path, TWO_BY_TWO, CLUSTER)).app
    cluster = TorchLive(cluster_app, (0, 1), placer)
    assert cluster.expected_echo(four) == {"cores": 2}
    assert cluster.place("job", four, os.getpid(), "app-1").startswith("no placement")
    assert len(placer.placed) == 1


# ------------------------------------------------------------------ chosen by engine


def test_the_backend_is_the_app_engines(tmp_path: Path) -> None:
    backend = build_backend(
        load_config(write_torch_project(tmp_path)), EnergySource(CpuPowerModel(10.0, 5.0))
    )
    assert isinstance(backend, TorchBackend) and backend.command == "lenet5_torch.py"
    assert backend.env.python == sys.executable and backend.env.java_home is None
    backend.close()


def test_dry_run_and_doctor_name_the_engine(tmp_path: Path) -> None:
    conf = str(write_torch_project(tmp_path))
    dry = CliRunner().invoke(main, ["--config", conf, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "app lenet5_torch (torch): " in dry.output and "one Python process" in dry.output
    assert "applied: cores live" in dry.output
    doctor = CliRunner().invoke(main, ["doctor", "--config", conf])
    assert doctor.exit_code == 0, doctor.output
    lines = {" ".join(line[7:].split()[:2]): line for line in doctor.output.splitlines()}
    assert lines["engine torch"].startswith("[ok  ]") and "CPU build" in lines["engine torch"]
    assert lines["engine TorchDistributor"].startswith("[ok  ]")
    assert lines["engine bigdl"].startswith("[ok  ]")  # the other engine: works here too


# ------------------------------------------------------------------ a stand-in app

STAND_IN = """
import argparse, os, sys
from pathlib import Path
from pipetune import contract

def parse(argv):
    p = argparse.ArgumentParser()
    for flag in ("--batchSize", "--trainSize", "--seed", "--cores"):
        p.add_argument(flag, type=int, default=None)
    for flag in ("--learningRate", "--learningRateDecay"):
        p.add_argument(flag, type=float, default=None)
    contract.add_standard_flags(p)
    return p.parse_args(argv)

def segment(args, reused):
    hp = {"batchSize": args.batchSize, "learningRate": args.learningRate,
          "learningRateDecay": args.learningRateDecay}
    made = {"trainSize": args.trainSize, "seed": args.seed, "cores": args.cores}
    contract.emit(contract.start_event(f"stand-in-{os.getpid()}", 0, hp, reuse=True,
                                       reused=reused, made=made))
    for epoch in range(1, args.epochs + 1):
        contract.emit(contract.epoch_event(epoch, 0.01, 0.5, hp, samples=8))
    Path(args.checkpoint).mkdir(parents=True, exist_ok=True)
    contract.write_meta(Path(args.checkpoint), {"epochs_done": args.epochs, "hyperparameters": hp})
    contract.emit(contract.end_event(args.epochs, args.checkpoint))

args, reused, path = parse(sys.argv[1:]), 0, contract.next_file()
while True:
    segment(args, reused)
    reused += 1
    handover = contract.await_next(path, reused, 30) if path else None
    if handover is None or handover.exit:
        break
    args = parse(list(handover.argv))
"""


def test_a_plain_process_is_reused_with_its_launchs_flags(tmp_path: Path) -> None:
    """The idle process is handed the launch's app flags again (extras, `--cores`) with the
    segment's own, so it makes the same data and threads as a fresh process would."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    app = load_config(write_torch_project(tmp_path, app={"conf": str(script)})).app
    env = TorchEnvironment(python=sys.executable)
    backend = TorchBackend(app, env, EnergySource(CpuPowerModel(10.0, 5.0)), tmp_path)

    def run(trial: str, cores: str) -> dict[str, Any]:
        log = tmp_path / trial / "seg.log"
        r = request({"cores": cores}, trial=trial, log=str(log), checkpoint=str(log.parent / "c"))
        result = backend.run_segment(r, lambda *a: None)
        assert [e.epoch for e in result.epochs] == [1, 2]
        events = [e for e in map(parse_event, log.read_text().splitlines()) if e]
        return next(e for e in events if e["event"] == "start")

    try:
        first, second, third = run("a", "2"), run("b", "2"), run("c", "1")
    finally:
        backend.close()
    made = {"trainSize": 1024, "seed": 0, "cores": 2}
    assert (first["reused"], first["made"]) == (0, made)
    assert (second["reused"], second["made"]) == (1, made)  # the same process, same flags
    assert second["app_id"] == first["app_id"]
    assert (third["reused"], third["made"]["cores"]) == (0, 1)  # another launch: a new process
    assert third["app_id"] != first["app_id"]
    assert json.loads((tmp_path / "b" / "c" / "meta.json").read_text())["epochs_done"] == 2
