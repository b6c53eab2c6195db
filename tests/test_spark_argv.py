from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipetune.backends.spark import pinned, spark_submit_argv
from pipetune.config import AppConfig, load_config
from pipetune.records import Role, SegmentRequest, SystemSetting
from pipetune.spark_env import SparkEnvironment
from tests.conftest import write_project
from tests.machine import require_tool

ENV = SparkEnvironment(
    spark_home=Path("/spark"),
    java_home=Path("/java"),
    dllib_jar=Path("/j/dllib.jar"),
    core_jar=Path("/j/core.jar"),
    properties_file=Path("/j/spark-bigdl.conf"),
    python="/venv/bin/python",
    python_home="/usr",
    python_path="/venv/site",
)


def request(setting: SystemSetting) -> SegmentRequest:
    return SegmentRequest(
        "t001",
        setting,
        2,
        Role.PROBE,
        {"batch_size": 64, "learning_rate": 0.05, "learning_rate_decay": 0.0},
        "/run/t001/checkpoint",
        "/run/t001/seg.log",
    )


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_local_master_maps_cores_and_memory_to_the_driver(tmp_path: Path) -> None:
    cfg = load_config(write_project(tmp_path))
    argv = spark_submit_argv(
        ENV, cfg.app, request(SystemSetting.of({"cores": "1", "memory": "3g"}))
    )
    assert argv[0] == "/spark/bin/spark-submit"
    assert option(argv, "--master") == "local[1]"
    assert option(argv, "--driver-memory") == "3g"
    assert "--total-executor-cores" not in argv
    assert option(argv, "--jars") == "/j/dllib.jar,/j/core.jar"
    assert "spark.executorEnv.PYTHONHOME=/usr" in argv


def test_every_hyperparameter_reaches_the_app_by_its_flag(tmp_path: Path) -> None:
    cfg = load_config(write_project(tmp_path))
    argv = spark_submit_argv(ENV, cfg.app, request(SystemSetting.of({"cores": "2"})))
    script = argv.index(str(cfg.app.script))
    app_args = argv[script + 1 :]
    assert option(app_args, "--batchSize") == "64"
    assert option(app_args, "--learningRate") == "0.05"
    assert option(app_args, "--learningRateDecay") == "0.0"
    assert option(app_args, "--epochs") == "2"
    assert option(app_args, "--checkpoint") == "/run/t001/checkpoint"
    assert option(app_args, "--trainSize") == "600"


def test_standalone_master_splits_cores_over_executors(tmp_path: Path) -> None:
    cfg = load_config(
        write_project(
            tmp_path,
            {"systemParameters": {"cores": ["4", "2"], "memory": ["2g", "1g"]}},
            {"master": "spark://127.0.0.1:7077", "num_executors": 2},
        )
    )
    argv = spark_submit_argv(
        ENV, cfg.app, request(SystemSetting.of({"cores": "4", "memory": "1g"}))
    )
    assert option(argv, "--master") == "spark://127.0.0.1:7077"
    assert option(argv, "--total-executor-cores") == "4"
    assert option(argv, "--executor-cores") == "2"
    assert option(argv, "--executor-memory") == "1g"
    assert option(argv, "--driver-memory") == "2g"


def test_app_level_system_parameters_become_flags(tmp_path: Path) -> None:
    cfg = load_config(
        write_project(
            tmp_path,
            {"systemParameters": {"cores": ["2"], "partitions": ["4", "8"]}},
            {"systemParameterFlags": {"partitions": "partitions"}},
        )
    )
    argv = spark_submit_argv(
        ENV, cfg.app, request(SystemSetting.of({"cores": "2", "partitions": "8"}))
    )
    assert option(argv, "--partitions") == "8"


def test_a_local_job_is_held_to_its_cores(tmp_path: Path) -> None:
    # BigDL's native threads use every CPU the JVM may run on, so local[1] alone would change
    # nothing: the job is pinned to as many CPUs as its cores (the first of this process's).
    cfg = load_config(write_project(tmp_path))
    env = dataclasses.replace(ENV, cpus=(2, 3, 5, 7), taskset="/usr/bin/taskset")
    one = spark_submit_argv(env, cfg.app, request(SystemSetting.of({"cores": "1"})))
    assert one[:3] == ["/usr/bin/taskset", "-c", "2"]
    assert one[3] == "/spark/bin/spark-submit" and option(one, "--master") == "local[1]"
    three = spark_submit_argv(env, cfg.app, request(SystemSetting.of({"cores": "3"})))
    assert three[:3] == ["/usr/bin/taskset", "-c", "2,3,5"]
    # as many cores as CPUs (or more), no taskset, or pinning off: the command is unchanged
    for cores, e, app in [
        ("4", env, cfg.app),
        ("8", env, cfg.app),
        ("1", dataclasses.replace(env, taskset=None), cfg.app),
        ("1", env, replace_spark(cfg.app, pin_cores=False)),
    ]:
        argv = spark_submit_argv(e, app, request(SystemSetting.of({"cores": cores})))
        assert argv[0] == "/spark/bin/spark-submit", (cores, argv[:3])


def replace_spark(app: AppConfig, **changes: Any) -> AppConfig:
    """The app config with some of its BigDL settings changed."""
    return dataclasses.replace(app, settings=dataclasses.replace(app.spark, **changes))


def test_a_standalone_job_is_never_pinned(tmp_path: Path) -> None:
    cfg = load_config(
        write_project(tmp_path, {}, {"master": "spark://127.0.0.1:7077", "num_executors": 1})
    )
    env = dataclasses.replace(ENV, cpus=(0, 1), taskset="/usr/bin/taskset")
    argv = spark_submit_argv(env, cfg.app, request(SystemSetting.of({"cores": "1"})))
    assert argv[0] == "/spark/bin/spark-submit"


def test_pin_cores_must_be_a_boolean(tmp_path: Path) -> None:
    from pipetune.config import ConfigError

    path = write_project(tmp_path, {}, {"pinCores": "yes"})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert 'app.json: $.pinCores: expected true or false, found "yes"' in str(err.value)


def test_taskset_really_holds_a_process_and_its_children_to_the_cpus(tmp_path: Path) -> None:
    taskset = require_tool("taskset", "apt-get install util-linux")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: nothing to hold a process to")
    env = dataclasses.replace(ENV, cpus=tuple(cpus), taskset=taskset)
    cfg = load_config(write_project(tmp_path))
    prefix = pinned(env, cfg.app, "1")
    child = "import os, subprocess, sys; print(sorted(os.sched_getaffinity(0)))"
    out = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(cpus[:1])
