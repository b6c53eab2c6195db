"""Run a segment of a PyTorch app (the torch engine): one plain Python process, or the app's
TorchDistributor launcher starting `processes` training processes over gloo, on this host
(`local[...]`) or on a standalone cluster's executors (`spark://...`).

    [taskset -c CPUS] PYTHON (APP | LAUNCHER --processes N --master M) [extras]
        [system flags] --cores T [hyperparameter flags] --epochs K --checkpoint DIR
        [--decisionFile F]

(the launcher runs its app, e.g. lenet5_torch's `distributor.py` the script beside it, with
the flags it does not take itself).

`cores` is the job's CPUs on this host: a local job is launched held to the first of them
(its widest live value, then placed at its setting at the first pause, as BigDL's local
mode), and each process gets `--cores` = cores / processes torch threads; a live change
re-pins the job's process tree and the app calls `torch.set_num_threads` (the decision's
`cores`). On a cluster the threads change live and the CPUs stay the executors'. There is no
`memory` (engines/torch.py). The lifecycle, reuse of an idle plain process, energy (the
process tree, and a cluster's executors on this host by app id) and the profile are the same
code as BigDL's (backends/base.py, backends/process.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipetune.backends.live import live_flag_values, place_tree
from pipetune.backends.process import ProcessBackend, app_flags, segment_argv, taskset_prefix
from pipetune.config import AppConfig
from pipetune.errors import EnvironmentProblem
from pipetune.placement import AffinityPlacer, Placer, first_cpus
from pipetune.records import SegmentRequest, SystemSetting
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.profiler import ProfilerSetup


@dataclass(frozen=True)
class TorchEnvironment:
    """What a torch job is launched with here."""

    python: str  # the venv's: torch and pipetune.contract import there
    cpus: tuple[int, ...] = ()  # the CPUs the tuner may use (its affinity)
    taskset: str | None = None
    java_home: Path | None = None  # for the launcher's Spark session (none: a plain process)
    spark_home: Path | None = None

    def process_env(self, loopback: bool) -> dict[str, str]:
        """The job's environment: the tuner's, plus Java and Spark for a launcher."""
        env = dict(os.environ)
        if self.java_home is not None and self.spark_home is not None:
            env.update(
                JAVA_HOME=str(self.java_home),
                SPARK_HOME=str(self.spark_home),
                PYSPARK_PYTHON=self.python,
                PYSPARK_DRIVER_PYTHON=self.python,
            )
            env["PATH"] = f"{self.java_home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            if loopback:
                env["SPARK_LOCAL_IP"] = "127.0.0.1"
        return env


def discover_torch(app: AppConfig) -> TorchEnvironment:
    """torch here, and Java and pyspark when the app needs its launcher; one error naming
    whatever is missing and how to install it."""
    from pipetune.spark_env import find_java_home

    missing = []
    if importlib.util.find_spec("torch") is None:
        missing.append("torch (pip install -r requirements-torch.lock: README, Engines)")
    java_home = spark_home = None
    if not app.torch.plain:
        java_home = find_java_home(missing)
        pyspark = importlib.util.find_spec("pyspark")
        if pyspark is None or pyspark.origin is None:
            missing.append("pyspark 3.5.9 (TorchDistributor)")
        else:
            spark_home = Path(pyspark.origin).parent
    if missing:
        raise EnvironmentProblem("cannot run the torch app here; missing: " + "; ".join(missing))
    return TorchEnvironment(
        python=sys.executable,
        cpus=tuple(sorted(os.sched_getaffinity(0))),
        taskset=shutil.which("taskset"),
        java_home=java_home,
        spark_home=spark_home,
    )


def torch_app_flags(app: AppConfig, request: SegmentRequest) -> list[str]:
    """The launch's app flags: extras and system-parameter flags, then `--cores` (each
    process's torch threads at the launch's cores)."""
    cores = request.launched_as.get("cores")
    threads = ["--cores", str(app.torch.threads(int(cores)))] if cores else []
    return app_flags(app, request) + threads


def torch_launch_argv(env: TorchEnvironment, app: AppConfig, request: SegmentRequest) -> list[str]:
    """The command line up to the segment's own flags (a pure function, tested on its own)."""
    torch = app.torch
    argv = []
    if torch.is_local and torch.pin_cores:
        argv += taskset_prefix(env.taskset, env.cpus, request.launched_as.get("cores"))
    argv.append(env.python)
    if torch.plain:
        argv.append(str(app.script))
    else:  # the launcher starts its app in each process, with the flags it does not take
        argv += [str(torch.launcher), "--processes", str(torch.processes)]
        argv += ["--master", torch.master]
    return argv + torch_app_flags(app, request)


def torch_argv(env: TorchEnvironment, app: AppConfig, request: SegmentRequest) -> list[str]:
    """The full command line of one segment."""
    return torch_launch_argv(env, app, request) + segment_argv(app, request)


class TorchLive:
    """What a live setting means for a torch job: each process's threads (cores / processes)
    for the app, and for a local job the CPUs of its whole process tree."""

    def __init__(self, app: AppConfig, cpus: tuple[int, ...], placer: Placer | None) -> None:
        self.app = app
        self.torch = app.torch
        self.cpus = cpus
        local = self.torch.is_local and self.torch.pin_cores and bool(cpus)
        self.placer = placer if local else None

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        values = live_flag_values(self.app, setting)
        cores = setting.get("cores")
        if cores is not None:
            values["cores"] = self.torch.threads(int(cores))
        return values

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        cores = setting.get("cores")
        if cores is None:
            return {}
        expected: dict[str, Any] = {"cores": self.torch.threads(int(cores))}
        if self.placer is not None:  # rank 0's CPUs: the whole tree's
            expected["cpus"] = list(first_cpus(self.cpus, int(cores)))
        return expected

    def place(self, job: str, setting: SystemSetting, root_pid: int, app_id: str) -> str:
        cores = setting.get("cores")
        if self.placer is None or cores is None:
            return "no placement (pinCores off, a cluster, or no cores parameter)"
        return place_tree(self.placer, job, root_pid, first_cpus(self.cpus, int(cores)))

    def release(self, job: str) -> None:
        if self.placer is not None:
            self.placer.release(job)


class TorchBackend(ProcessBackend):
    """A torch app's segments: a plain process (reused for the next segment launched alike,
    `reuseProcess`), or a TorchDistributor launch per segment."""

    def __init__(
        self,
        app: AppConfig,
        env: TorchEnvironment,
        energy: EnergySource,
        cwd: Path,
        profiler: ProfilerSetup | None = None,
        placer: Placer | None = None,
    ) -> None:
        live = TorchLive(app, env.cpus, placer or AffinityPlacer())
        super().__init__(app, energy, cwd, live, profiler)
        self.env = env
        launcher = app.torch.launcher
        self.command = (launcher if launcher and not app.torch.plain else app.script).name

    @property
    def reuses(self) -> bool:
        """A launcher's processes end with their segment (distributor.py)."""
        return self.app.reuse_process and self.app.torch.plain

    def launch_argv(self, request: SegmentRequest) -> list[str]:
        return torch_launch_argv(self.env, self.app, request)

    def launch_app_flags(self, request: SegmentRequest) -> list[str]:
        return torch_app_flags(self.app, request)

    def _environment(self, log: IO[str]) -> tuple[dict[str, str], Path | None]:
        master = self.app.torch.master
        loopback = self.app.torch.is_local or "127.0.0.1" in master or "localhost" in master
        return self.env.process_env(loopback), None
