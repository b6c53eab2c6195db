"""A backend whose segment is a launched process of the app, or the idle one of the segment
before (`reuseProcess`): what spark-submit (backends/spark.py) and torch
(backends/torch_backend.py) share. An engine supplies its launch command line (pure,
tested on its own), its environment and what a live setting means (`LivePart`); the segment's
own flags, the reuse of an idle process, the decision file and the measuring are here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pipetune import contract
from pipetune.backends.base import Backend
from pipetune.backends.job import ContractJob, JobProcess, LivePart
from pipetune.backends.lifecycle import takes_decisions
from pipetune.backends.meter import LiveMeter, SegmentMeter
from pipetune.config import AppConfig
from pipetune.records import SegmentRequest
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import executor_processes
from pipetune.telemetry.profiler import ProfilerSetup


def segment_argv(app: AppConfig, request: SegmentRequest) -> list[str]:
    """The segment's own flags: its hyperparameters, epochs, checkpoint and decision file."""
    argv = []
    for name, value in request.hyperparameters.items():
        argv += [f"--{app.hyperparameter_flags[name]}", str(value)]
    decisions = decision_path(request) if takes_decisions(request) else None
    return argv + contract.standard_flags(request.epochs, request.checkpoint_dir, decisions)


def app_flags(app: AppConfig, request: SegmentRequest) -> list[str]:
    """The launch's app flags after the script: the extras, then each system parameter the
    app takes as a flag, at the segment's setting."""
    argv = []
    for key, value in app.extras.items():
        argv += [f"--{key}", str(value)]
    setting = request.setting.as_dict()
    for name, flag in app.system_parameter_flags.items():
        if name in request.launched_as.as_dict():
            argv += [f"--{flag}", setting[name]]
    return argv


def decision_path(request: SegmentRequest) -> Path:
    """Where the tuner's answers to a paused segment go (beside the segment's log)."""
    return Path(request.log_path + ".decision.json")


def taskset_prefix(taskset: str | None, cpus: Sequence[int], cores: str | None) -> list[str]:
    """`taskset -c <the first N CPUs>` for a job at `cores` N, when that is fewer CPUs than the
    tuner has; nothing otherwise (all of them, or no taskset)."""
    if not (cores and taskset and cpus):
        return []
    n = int(cores)
    if n >= len(cpus):
        return []
    return [taskset, "-c", ",".join(str(c) for c in cpus[:n])]


class ProcessBackend(Backend[ContractJob]):
    """One process per segment, or, with `reuseProcess`, one per launch: a segment launched
    as the last one was runs in that process, which waits idle between them
    (backends/job.py). Energy is measured over the process tree, and on a cluster over the
    application's executors on this host (found by its app id once the app has said it)."""

    command = "the app"  # names the process in errors

    def __init__(
        self,
        app: AppConfig,
        energy: EnergySource,
        cwd: Path,
        live: LivePart,
        profiler: ProfilerSetup | None = None,
    ) -> None:
        super().__init__()
        self.app = app
        self.energy = energy
        self.profiler = profiler
        self.cwd = cwd
        self.live = live
        self.timeout_s = app.timeout_s
        self._idle: JobProcess | None = None  # between segments, free for the next one

    @abstractmethod
    def launch_argv(self, request: SegmentRequest) -> list[str]:
        """The command line up to the segment's own flags, ending with `app_flags`: what a
        process is launched with, and what a segment must share with a process to run in it."""

    @abstractmethod
    def _environment(self, log: IO[str]) -> tuple[dict[str, str], Path | None]:
        """A new process's environment, and the class-data-sharing archive it will write."""

    def launch_app_flags(self, request: SegmentRequest) -> list[str]:
        """The launch's app flags after the script (`app_flags`), which an idle process is
        handed again with the segment's own: it parses them as at a launch."""
        return app_flags(self.app, request)

    def reuse_key(self, launch: list[str]) -> tuple[str, ...]:
        """What a segment must share with a process to run in it: its launch."""
        return tuple(launch)

    @property
    def reuses(self) -> bool:
        """Whether a process waits idle for the next segment after its own (`reuseProcess`)."""
        return self.app.reuse_process

    def stop(self) -> None:
        super().stop()
        if self._idle is not None:
            self._idle.kill()

    def close(self) -> None:
        """Retire the idle process (its Spark context stopped, the process ended)."""
        if self._idle is not None:
            self._end(self._idle, self._idle.retire() == 0)
            self._idle = None

    def _start(self, request: SegmentRequest) -> ContractJob:
        """The segment in the idle process if it was launched alike, else in a new one."""
        launch = self.launch_argv(request)
        app_argv = segment_argv(self.app, request)
        Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
        decisions = decision_path(request)
        decisions.unlink(missing_ok=True)  # never an answer from an earlier try
        log = open(request.log_path, "a", encoding="utf-8")  # noqa: SIM115 - the job's to close
        try:
            process = self._reusable(self.reuse_key(launch), app_argv, request, log)
            if process is None:
                process = self._launch(launch, app_argv, request, log)
            else:
                process.hand_over(self.launch_app_flags(request) + app_argv)
        except BaseException:
            log.close()
            raise
        flags = self.app.hyperparameter_flags
        return ContractJob(
            process, log, self.live, request.trial_id, decisions, flags, self.command
        )

    def _meter(self, job: ContractJob, request: SegmentRequest) -> SegmentMeter:
        others = None
        if not self.app.settings.is_local:
            others = lambda: executor_processes(job.app_id)  # noqa: E731
        return LiveMeter(self.energy, self.profiler, job.pid, others)

    def _finished(self, job: ContractJob, idle: bool, ended: bool) -> None:
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
        env, dump = self._environment(log)
        log.flush()
        next_path = Path(request.log_path + ".next.json") if self.reuses else None
        return JobProcess.launch(self.reuse_key(launch), argv, env, self.cwd, next_path, dump)

    def _end(self, job: JobProcess, ok: bool) -> None:
        """A process has ended (or is killed): its lifeline closed."""
        job.close()
