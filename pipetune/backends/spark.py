"""Run a segment as one `spark-submit` of the app, under a timeout, and read its epochs live.

A segment is one process. With a decision file (`takes_decisions`) the app pauses right
after its start, where the segment's setting is put in force (launched wider, then placed:
backends/live.py), and then wherever the tuner's last decision said; at each later pause the
tuner decides to stop there, go on, or go on at another setting reachable live. The epochs
between two pauses at one setting are a `Stint`; the result lists them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from pipetune import contract
from pipetune.backends.base import Backend, DecideCallback, EpochCallback
from pipetune.backends.cds import ClassDataSharing
from pipetune.backends.events import echo_mismatches, epoch_report, window_report
from pipetune.backends.job import JobProcess
from pipetune.backends.live import LiveSettings
from pipetune.backends.startup import StartupPhases
from pipetune.config import AppConfig, executor_layout
from pipetune.contract import EventError, parse_event
from pipetune.errors import AppContractError, PipeTuneError, SegmentFailed
from pipetune.placement import AffinityPlacer, PlacementError, Placer
from pipetune.records import (
    Decision,
    Energy,
    EpochReport,
    Pause,
    SegmentRequest,
    SegmentResult,
    Stint,
    SystemSetting,
    WindowReport,
)
from pipetune.spark_env import SparkEnvironment
from pipetune.telemetry.energy_source import EnergySource, Mark, SegmentEnergy
from pipetune.telemetry.estimate import executor_processes
from pipetune.telemetry.profiler import EpochProfile, ProfilerSetup


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


def takes_decisions(request: SegmentRequest) -> bool:
    """Whether the app is given a decision file: it may pause, or starts wider than its setting."""
    return 0 < request.decide_after < request.epochs or request.launch is not None


def decision_path(request: SegmentRequest) -> Path:
    """Where the tuner's answers to a paused segment go (beside the segment's log)."""
    return Path(request.log_path + ".decision.json")


class SparkSubmitBackend(Backend):
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
        self.app = app
        self.env = env
        self.energy = energy
        self.profiler = profiler
        self.cwd = cwd
        self.live = LiveSettings(app, env.cpus, placer or AffinityPlacer())
        self.cds = ClassDataSharing(env) if app.class_data_sharing else None
        self._running: JobProcess | None = None  # in a segment
        self._idle: JobProcess | None = None  # between segments, free for the next one

    def run_segment(
        self,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None = None,
    ) -> SegmentResult:
        launch = launch_argv(self.env, self.app, request)
        app_argv = segment_argv(self.app, request)
        Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
        decision_path(request).unlink(missing_ok=True)  # never an answer from an earlier try
        with open(request.log_path, "a", encoding="utf-8") as log:
            job = self._reusable(reuse_key(launch), app_argv, request, log)
            if job is None:
                job = self._launch(launch, app_argv, request, log)
            else:
                job.hand_over(app_argv)
            return self._run(job, request, on_epoch, decide, log)

    def stop(self) -> None:
        for job in (self._running, self._idle):
            if job is not None:
                job.kill()

    def close(self) -> None:
        """Retire the idle process (its Spark context stopped, the process ended)."""
        if self._idle is not None:
            self._end(self._idle, self._idle.retire() == 0)
            self._idle = None

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

    def _run(
        self,
        job: JobProcess,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None,
        log: IO[str],
    ) -> SegmentResult:
        proc = job.proc
        self._running = job
        run = _SegmentRun(self, request, job, on_epoch, decide, log, time.time())
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            job.kill()

        watchdog = threading.Timer(self.app.timeout_s, on_timeout)
        watchdog.daemon = True
        watchdog.start()
        tail: deque[str] = deque(maxlen=40)
        try:
            if proc.stdout is None:
                raise SegmentFailed("spark-submit has no output pipe", "")
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                event = parse_event(line)
                if event is not None:
                    log.flush()  # the log is complete up to every event, for whoever tails it
                    run.handle(event)
                    if run.idle:
                        break  # its segment is done; the process waits for the next one
            rc = 0 if run.idle else proc.wait()
        except EventError as exc:
            job.kill()
            raise AppContractError(str(exc), "".join(tail)) from None
        except BaseException:
            job.kill()  # Ctrl-C or a contract error: never leave a JVM behind
            raise
        finally:
            watchdog.cancel()
            run.close()
            self.live.release(run.job)
            self._running = None
            if run.idle and not timed_out.is_set():
                job.segments += 1
                self._idle = job
            else:
                self._end(job, proc.poll() == 0 and run.ended)
        if timed_out.is_set():
            raise SegmentFailed(f"timed out after {self.app.timeout_s:g} s", "".join(tail))
        if rc != 0 or not run.ended:
            raise SegmentFailed(f"spark-submit exited with status {rc}", "".join(tail))
        return run.result("".join(tail))


class _SegmentRun:
    """One segment's events, turned into stints: the bookkeeping between pauses."""

    def __init__(
        self,
        backend: SparkSubmitBackend,
        request: SegmentRequest,
        job: JobProcess,
        on_epoch: EpochCallback,
        decide: DecideCallback | None,
        log: IO[str],
        launched_at: float,
    ) -> None:
        self.backend = backend
        self.request = request
        self.process = job
        self.proc = job.proc
        self.reused = job.segments  # segments the process ran before this one
        proc = job.proc
        self.on_epoch = on_epoch
        self.decide = decide
        self.log = log
        self.job = f"{request.trial_id}-{proc.pid}"
        self.app_id = ""
        extra = None
        if not backend.app.is_local:
            extra = lambda: executor_processes(self.app_id)  # noqa: E731
        self.meter: SegmentEnergy = backend.energy.segment(proc.pid, extra)
        self.first = self.boundary = self.last = self.meter.mark()
        self.end: Mark | None = None
        self.setting = request.setting
        self.role = request.role
        self.stints: list[Stint] = []
        self.epochs: list[EpochReport] = []
        self.switch_s = 0.0
        self.stint_error: str | None = None
        self.expected: dict[str, Any] = {}
        self.profiling: EpochProfile | None = None
        self.profile: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}
        self.placed = False
        self.stopped = False
        self.ended = False
        self.idle = False  # after `end`: the process waits for its next segment
        self.phases = StartupPhases(launched_at)
        self.windows = False  # the app can pause inside an epoch (its `start` says so)
        self.window: WindowReport | None = None  # the window just reported, before its pause
        self.warmup = 0  # of the window asked for: its first iterations not measured

    # ------------------------------------------------------------------ events

    def handle(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == contract.START:
            self.app_id = self.process.app_id = str(event.get("app_id", ""))
            self.windows = event.get("windows") is True
            self.phases.started(event.get("startup"))
            self.last = self.meter.mark()
            if not takes_decisions(self.request):
                self._begin_profile()
        elif kind == contract.PAUSE:
            self._pause(int(event.get("epoch", -1)), int(event.get("iteration") or 0))
        elif kind == contract.EPOCH:
            self._epoch(event)
        elif kind == contract.WINDOW:
            self._window(event)
        elif kind == contract.REFUSED:
            self.stint_error = f"the app refused {self.setting}: {event.get('reason')}"
        elif kind == contract.END:
            self.ended = True
            self.phases.ended(event.get("save_s"))
        elif kind == contract.IDLE:
            if not self.ended:
                raise EventError("the app went idle before the end of its segment")
            self.idle = True

    def _epoch(self, event: dict[str, Any]) -> None:
        now = self.meter.mark()
        if self.profiling is not None:
            self.profile = self._end_profile(self.profiling)
            self.profiling = None
        report = epoch_report(event, self.meter.between(self.last, now))
        self.last = now
        self._check_echo(report)
        self.epochs.append(report)
        self.on_epoch(report, self.setting, self.role)

    def _window(self, event: dict[str, Any]) -> None:
        now = self.meter.mark()
        self.window = window_report(event, self.warmup, self.meter.between(self.boundary, now))
        self._raise_mismatches(self._system_mismatches(self.window.system))

    def _pause(self, epoch: int, iteration: int) -> None:
        started = time.monotonic()
        if not self.placed:  # the pause right after start: put the segment's setting in force
            self.placed = True
            decision = Decision(self.setting, self.role, self.request.decide_after)
            if not self._put_in_force(self.setting, initial=True):
                decision = Decision(None, why=self.stint_error or "")
            self._answer(epoch, iteration, decision)
            self._begin_profile()
            return
        if self.stopped:
            raise EventError(f"the app paused after epoch {epoch}, after it was told to stop")
        now = self.meter.mark()
        pause = Pause(
            self.setting,
            self.role,
            tuple(self.epochs),
            max(0.0, now.at - self.boundary.at),
            self.meter.between(self.boundary, now),
            self.profile if not self.stints else None,
            self.window,
        )
        if self.decide is None:  # nobody to ask: go on as launched
            decision = Decision(self.setting, self.role, 0)
        else:
            decision = self.decide(pause)
        self._close_stint(now)
        target = decision.setting
        if (
            target is not None
            and target != self.setting
            and not self._put_in_force(target, initial=False)
        ):
            self.stints.append(
                Stint(target, decision.role, (), 0.0, Energy.zero(), error=self.stint_error)
            )
            self.stint_error = None
            decision = Decision(None, why="the setting could not be put in force")
        if decision.setting is not None:
            self.setting, self.role = decision.setting, decision.role
        self._answer(epoch, iteration, decision)
        self.switch_s = time.monotonic() - started

    def _put_in_force(self, setting: SystemSetting, initial: bool) -> bool:
        """The OS part (CPUs), before the app is told its part; False if it cannot be."""
        live = self.backend.live
        try:
            what = live.place(self.job, setting, self.proc.pid, self.app_id)
        except (PlacementError, OSError) as exc:
            self.stint_error = f"could not place the job at {setting}: {exc}"
            return False
        self.log.write(f"[pipetune-backend] {'launch' if initial else 'live'} {setting}: {what}\n")
        self.expected = live.expected_echo(setting)
        self.process.placed = True
        return True

    def _answer(self, epoch: int, iteration: int, decision: Decision) -> None:
        live = self.backend.live.app_values(decision.setting) if decision.setting else {}
        pause_after, iterations = decision.pause_after, decision.iterations
        if iterations and not self.windows:  # the app pauses only between epochs: one epoch
            pause_after, iterations = 1, 0
        self.warmup = decision.warmup if iterations else 0
        answer = contract.Decision(epoch, decision.go_on, live, pause_after, iteration, iterations)
        contract.write_decision(decision_path(self.request), answer)
        self.stopped = not decision.go_on

    # ------------------------------------------------------------------ stints

    def _close_stint(self, now: Mark) -> None:
        self.stints.append(self._stint(self.boundary, now))
        self.boundary = now
        self.epochs = []
        self.window = None
        self.switch_s = 0.0

    def _stint(self, a: Mark, b: Mark) -> Stint:
        wall = max(0.0, b.at - a.at)
        return Stint(
            self.setting,
            self.role,
            tuple(self.epochs),
            wall,
            self.meter.between(a, b),
            self.profile if not self.stints else None,
            self.switch_s,
            self.stint_error,
            self.window,
        )

    def _failed_stint(self, decision: Decision) -> Stint:
        return Stint(self.setting, self.role, (), 0.0, Energy.zero(), error=decision.why)

    def close(self) -> None:
        if self.profiling is not None:
            self.profiling.abort()
        self.end = self.meter.close()

    def result(self, tail: str) -> SegmentResult:
        end = self.end or self.meter.mark()
        if self.epochs or not self.stints or self.stint_error:
            self.stints.append(self._stint(self.boundary, end))
        else:  # stopped at a pause: the save and teardown belong to the last stint
            last = self.stints[-1]
            self.stints[-1] = dataclasses.replace(
                last,
                wall_s=last.wall_s + max(0.0, end.at - self.boundary.at),
                energy=last.energy + self.meter.between(self.boundary, end),
            )
        asked = self.request.epochs
        got = sum(len(s.epochs) for s in self.stints)
        if got != asked and not self.stopped and not self.stint_error:
            raise AppContractError(f"asked for {asked} epoch(s), the app reported {got}", tail)
        if self.meter.fallbacks:
            self.extra["energy_fallbacks"] = self.meter.fallbacks
        if self.phases.seconds:
            self.extra["startup"] = self.phases.finished()
        self.extra["power"] = self.meter.power_series(self.first, end)
        return SegmentResult(tuple(self.stints), self.app_id, self.extra, self.reused)

    # ------------------------------------------------------------------ checks

    def _check_echo(self, report: EpochReport) -> None:
        app = self.backend.app
        sent = self.request.hyperparameters
        wrong = echo_mismatches(sent, app.hyperparameter_flags, report.echoed)
        self._raise_mismatches(wrong + self._system_mismatches(report.system))

    def _system_mismatches(self, system: dict[str, Any]) -> list[str]:
        """What the app says is in force (an epoch's or a window's `system`) against what the
        backend put in force."""
        if not self.expected:
            return []
        if not system:
            return ["the app did not echo the system setting in force (`system`)"]
        return [
            f"system {k}: in force should be {v!r}, app echoed {system.get(k)!r}"
            for k, v in self.expected.items()
            if system.get(k) != v
        ]

    @staticmethod
    def _raise_mismatches(wrong: list[str]) -> None:
        if wrong:
            raise EventError("the app did not receive what was sent: " + "; ".join(wrong))

    def _end_profile(self, profiling: EpochProfile) -> dict[str, Any] | None:
        """The profile of the epoch just reported; a failure is recorded, never fatal."""
        try:
            return profiling.end().to_dict()
        except (PipeTuneError, OSError, ValueError) as exc:
            self.extra["profile_error"] = str(exc)
            return None

    def _begin_profile(self) -> None:
        backend = self.backend
        if not self.request.profile or backend.profiler is None:
            return
        extra = None
        if not backend.app.is_local:
            extra = lambda: [p.pid for p in executor_processes(self.app_id)]  # noqa: E731
        try:
            self.profiling = EpochProfile(backend.profiler, self.proc.pid, extra)
        except (PipeTuneError, OSError) as exc:
            self.extra["profile_error"] = str(exc)
