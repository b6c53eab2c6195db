"""Run a segment as one `spark-submit` of the app (BigDL; the lifecycle is backends/base.py,
the process and its reuse backends/process.py).

The command line is built by pure functions (tested on their own): the launch's part, which a
process is launched with and which a segment must share with an idle process to run in it,
and the segment's own (`segment_argv`). The driver JVM starts from a class-data-sharing
archive when there is one (backends/cds.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pipetune.backends.cds import ClassDataSharing
from pipetune.backends.job import JobProcess
from pipetune.backends.live import LiveSettings
from pipetune.backends.process import ProcessBackend, app_flags, segment_argv, taskset_prefix
from pipetune.config import AppConfig
from pipetune.engines.bigdl import executor_layout
from pipetune.placement import AffinityPlacer, Placer
from pipetune.records import SegmentRequest
from pipetune.spark_env import SparkEnvironment
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.profiler import ProfilerSetup


def spark_submit_argv(env: SparkEnvironment, app: AppConfig, request: SegmentRequest) -> list[str]:
    """The full command line for one segment (a pure function, tested on its own): the
    launch's part, then the segment's own."""
    return launch_argv(env, app, request) + segment_argv(app, request)


def launch_argv(env: SparkEnvironment, app: AppConfig, request: SegmentRequest) -> list[str]:
    """The command line up to the segment's own flags: what a process is launched with, and
    what a segment must share with a process to run in it (backends/job.py).

    The Spark options come from the launch setting (`request.launched_as`: live parameters
    at their widest, so that every later live value fits inside the process).
    local[N]: `cores` → N and `memory` → driver memory (the driver is the executor); with
    `pinCores` (default) the job is also held to N CPUs by `taskset`, because BigDL's native
    threads use every CPU the process may run on, so N alone changes nothing.
    spark://: `cores` → total-executor-cores split over `num_executors` executors,
    `memory` → executor memory.
    """
    spark = app.spark
    values = request.launched_as.as_dict()
    cores = values.get("cores")
    memory = values.get("memory")
    classpath = os.pathsep.join(str(j) for j in env.jars)
    argv = [str(env.spark_submit), "--name", f"pipetune-{request.trial_id}-{request.role.value}"]
    if spark.is_local:
        master = f"local[{cores}]" if cores else spark.master
        argv += ["--master", master, "--driver-memory", memory or spark.driver_memory]
    else:
        argv += ["--master", spark.master, "--driver-memory", spark.driver_memory]
        argv += ["--executor-memory", memory or spark.executor_memory]
        if cores:
            _, per_executor = executor_layout(int(cores), spark.num_executors)
            argv += ["--total-executor-cores", cores, "--executor-cores", str(per_executor)]
    argv = pinned(env, app, cores) + argv
    argv += [
        "--properties-file",
        str(env.properties_file),
        "--jars",
        ",".join(str(j) for j in env.jars),
        "--conf",
        f"spark.driver.extraClassPath={classpath}",
        "--conf",
        f"spark.executor.extraClassPath={classpath}",
        "--conf",
        f"spark.executorEnv.PYTHONHOME={env.python_home}",
        "--conf",
        f"spark.executorEnv.PYTHONPATH={env.python_path}",
        "--conf",
        f"spark.pyspark.python={env.python}",
    ]
    for key, value in spark.spark_conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(app.script), *app_flags(app, request)]


def reuse_key(launch: list[str]) -> tuple[str, ...]:
    """What a segment must share with a process to run in it: its launch command line but the
    Spark application's name (which names the trial that launched it)."""
    return tuple(a for i, a in enumerate(launch) if a != "--name" and launch[i - 1] != "--name")


def pinned(env: SparkEnvironment, app: AppConfig, cores: str | None) -> list[str]:
    """`taskset -c <the first N CPUs>` for a local job at `cores` N, when that is fewer CPUs
    than the process has; nothing otherwise (all of them, a cluster master, or no taskset)."""
    if not (app.spark.is_local and app.spark.pin_cores):
        return []
    return taskset_prefix(env.taskset, env.cpus, cores)


class SparkSubmitBackend(ProcessBackend):
    """One spark-submit per segment against the app config's master, or, with
    `reuseProcess`, one per launch (backends/process.py)."""

    command = "spark-submit"

    def __init__(
        self,
        app: AppConfig,
        env: SparkEnvironment,
        energy: EnergySource,
        cwd: Path,
        profiler: ProfilerSetup | None = None,
        placer: Placer | None = None,
    ) -> None:
        live = LiveSettings(app, env.cpus, placer or AffinityPlacer())
        super().__init__(app, energy, cwd, live, profiler)
        self.env = env
        self.cds = ClassDataSharing(env) if app.spark.class_data_sharing else None

    def launch_argv(self, request: SegmentRequest) -> list[str]:
        return launch_argv(self.env, self.app, request)

    def reuse_key(self, launch: list[str]) -> tuple[str, ...]:
        return reuse_key(launch)

    def _environment(self, log: IO[str]) -> tuple[dict[str, str], Path | None]:
        master = self.app.spark.master
        loopback = self.app.spark.is_local or "127.0.0.1" in master or "localhost" in master
        env = self.env.process_env(loopback)
        option, dump = self.cds.launch() if self.cds is not None else ("", None)
        if option:  # the driver JVM is spark-submit's own (client and local mode)
            env["SPARK_SUBMIT_OPTS"] = f"{env.get('SPARK_SUBMIT_OPTS', '')} {option}".strip()
            log.write(f"[pipetune-backend] class data sharing: {option}\n")
        return env, dump

    def _end(self, job: JobProcess, ok: bool) -> None:
        """A process has ended (or is killed): its lifeline closed, its archive kept if good."""
        super()._end(job, ok)
        if self.cds is not None:
            self.cds.landed(job.cds_dump, ok)
