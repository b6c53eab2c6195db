"""Run a segment as one `spark-submit` of the app (the lifecycle is backends/base.py).

The command line is built by pure functions (tested on their own): the launch's part, which a
process is launched with and which a segment must share with an idle process to run in it,
and the segment's own. The backend launches a process, or hands the segment to the idle one
(`reuseProcess`), and measures it: energy over its process tree (and a cluster's executors
on this host), the profiling epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pipetune import contract
from pipetune.backends.base import Backend
from pipetune.backends.cds import ClassDataSharing
from pipetune.backends.job import JobProcess, SparkJob
from pipetune.backends.lifecycle import takes_decisions
from pipetune.backends.live import LiveSettings
from pipetune.backends.meter import LiveMeter, SegmentMeter
from pipetune.config import AppConfig, executor_layout
from pipetune.placement import AffinityPlacer, Placer
from pipetune.records import SegmentRequest
from pipetune.spark_env import SparkEnvironment
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import executor_processes
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
    values = request.launched_as.as_dict()
    cores = values.get("cores")
    memory = values.get("memory")
    classpath = os.pathsep.join(str(j) for j in env.jars)
    argv = [str(env.spark_submit), "--name", f"pipetune-{request.trial_id}-{request.role.value}"]
    if app.is_local:
        master = f"local[{cores}]" if cores else app.master
        argv += ["--master", master, "--driver-memory", memory or app.driver_memory]
    else:
        argv += ["--master", app.master, "--driver-memory", app.driver_memory]
        argv += ["--executor-memory", memory or app.executor_memory]
        if cores:
            _, per_executor = executor_layout(int(cores), app.num_executors)
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
    for key, value in app.spark_conf.items():
        argv += ["--conf", f"{key}={value}"]
    argv.append(str(app.script))
    for key, value in app.extras.items():
        argv += [f"--{key}", str(value)]
    for name, flag in app.system_parameter_flags.items():
        if name in values:
            argv += [f"--{flag}", request.setting.as_dict()[name]]
    return argv


def reuse_key(launch: list[str]) -> tuple[str, ...]:
    """What a segment must share with a process to run in it: its launch command line but the
    Spark application's name (which names the trial that launched it)."""
    return tuple(a for i, a in enumerate(launch) if a != "--name" and launch[i - 1] != "--name")


def segment_argv(app: AppConfig, request: SegmentRequest) -> list[str]:
    """The segment's own flags: its hyperparameters, epochs, checkpoint and decision file."""
    argv = []
    for name, value in request.hyperparameters.items():
        argv += [f"--{app.hyperparameter_flags[name]}", str(value)]
    decisions = decision_path(request) if takes_decisions(request) else None
    return argv + contract.standard_flags(request.epochs, request.checkpoint_dir, decisions)


def pinned(env: SparkEnvironment, app: AppConfig, cores: str | None) -> list[str]:
    """`taskset -c <the first N CPUs>` for a local job at `cores` N, when that is fewer CPUs
    than the process has; nothing otherwise (all of them, a cluster master, or no taskset)."""
    if not (app.is_local and app.pin_cores and cores and env.taskset and env.cpus):
        return []
    n = int(cores)
    if n >= len(env.cpus):
        return []
    return [env.taskset, "-c", ",".join(str(c) for c in env.cpus[:n])]


def decision_path(request: SegmentRequest) -> Path:
    """Where the tuner's answers to a paused segment go (beside the segment's log)."""
    return Path(request.log_path + ".decision.json")


class SparkSubmitBackend(Backend[SparkJob]):
    """One spark-submit per segment against the app config's master, or, with
    `reuseProcess`, one per launch: a segment launched as the last one was runs in that
    process, which waits idle between them (backends/job.py)."""

    def __init__(
        self,
        app: AppConfig,
        env: SparkEnvironment,
        energy: EnergySource,
        cwd: Path,
        profiler: ProfilerSetup | None = None,
        placer: Placer | None = None,
    ) -> None:
        super().__init__()
        self.app = app
        self.env = env
        self.energy = energy
        self.profiler = profiler
        self.cwd = cwd
        self.timeout_s = app.timeout_s
        self.live = LiveSettings(app, env.cpus, placer or AffinityPlacer())
        self.cds = ClassDataSharing(env) if app.class_data_sharing else None
        self._idle: JobProcess | None = None  # between segments, free for the next one

    def stop(self) -> None:
        super().stop()
        if self._idle is not None:
            self._idle.kill()

    def close(self) -> None:
        """Retire the idle process (its Spark context stopped, the process ended)."""
        if self._idle is not None:
            self._end(self._idle, self._idle.retire() == 0)
            self._idle = None

    def _start(self, request: SegmentRequest) -> SparkJob:
        """The segment in the idle process if it was launched alike, else in a new one."""
        launch = launch_argv(self.env, self.app, request)
        app_argv = segment_argv(self.app, request)
        Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
        decisions = decision_path(request)
        decisions.unlink(missing_ok=True)  # never an answer from an earlier try
        log = open(request.log_path, "a", encoding="utf-8")  # noqa: SIM115 - the job's to close
        try:
            process = self._reusable(reuse_key(launch), app_argv, request, log)
            if process is None:
                process = self._launch(launch, app_argv, request, log)
            else:
                process.hand_over(app_argv)
        except BaseException:
            log.close()
            raise
        return SparkJob(process, log, self.live, request.trial_id, decisions)

    def _meter(self, job: SparkJob, request: SegmentRequest) -> SegmentMeter:
        """Energy over the process tree; on a cluster also over this application's
        executors on this host (found by its app id once the app has said it)."""
        others = None
        if not self.app.is_local:
            others = lambda: executor_processes(job.app_id)  # noqa: E731
        return LiveMeter(self.energy, self.profiler, job.pid, others)

    def _finished(self, job: SparkJob, idle: bool, ended: bool) -> None:
        job.log.close()
        process = job.process
        if idle:
            process.segments += 1
            self._idle = process
        else:
            self._end(process, process.proc.poll() == 0 and ended)

    def _reusable(
        self, key: tuple[str, ...], app_argv: list[str], request: SegmentRequest, log: IO[str]
    ) -> JobProcess | None:
        """The idle process, if this segment is launched as it was; it is retired otherwise."""
        job, self._idle = self._idle, None
        if job is None:
            return None
        if not job.reusable_for(key):
            self._end(job, job.retire() == 0)
            return None
        log.write(
            f"[pipetune-backend] reusing process {job.pid} (its segment {job.segments + 1}): "
            + " ".join(app_argv)
            + "\n"
        )
        if job.placed:  # back to the launch's CPUs, as a fresh process would start
            name = f"{request.trial_id}-{job.pid}"
            what = self.live.place(name, request.launched_as, job.pid, job.app_id)
            log.write(f"[pipetune-backend] launch {request.launched_as}: {what}\n")
            job.placed = False
        log.flush()
        return job

    def _launch(
        self, launch: list[str], app_argv: list[str], request: SegmentRequest, log: IO[str]
    ) -> JobProcess:
        argv = [*launch, *app_argv]
        log.write("$ " + " ".join(argv) + "\n")
        loopback = (
            self.app.is_local or "127.0.0.1" in self.app.master or "localhost" in self.app.master
        )
        env = self.env.process_env(loopback)
        option, dump = self.cds.launch() if self.cds is not None else ("", None)
        if option:  # the driver JVM is spark-submit's own (client and local mode)
            env["SPARK_SUBMIT_OPTS"] = f"{env.get('SPARK_SUBMIT_OPTS', '')} {option}".strip()
            log.write(f"[pipetune-backend] class data sharing: {option}\n")
        log.flush()
        next_path = Path(request.log_path + ".next.json") if self.app.reuse_process else None
        return JobProcess.launch(reuse_key(launch), argv, env, self.cwd, next_path, dump)

    def _end(self, job: JobProcess, ok: bool) -> None:
        """A process has ended (or is killed): its lifeline closed, its archive kept if good."""
        job.close()
        if self.cds is not None:
            self.cds.landed(job.cds_dump, ok)
