"""Run a segment as one `spark-submit` of the app, under a timeout, and read its epochs live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from pipetune import lifeline
from pipetune.backends.base import Backend, DecideCallback, EpochCallback
from pipetune.backends.events import EventError, echo_mismatches, epoch_report, parse_event
from pipetune.config import AppConfig, executor_layout
from pipetune.errors import AppContractError, PipeTuneError, SegmentFailed
from pipetune.records import Energy, EpochReport, Pause, Paused, SegmentRequest, SegmentResult
from pipetune.spark_env import SparkEnvironment
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import executor_processes
from pipetune.telemetry.profiler import EpochProfile, ProfilerSetup


def spark_submit_argv(env: SparkEnvironment, app: AppConfig, request: SegmentRequest) -> list[str]:
    """The full command line for one segment (a pure function, tested on its own).

    local[N]: `cores` → N and `memory` → driver memory (the driver is the executor); with
    `pinCores` (default) the job is also held to N CPUs by `taskset`, because BigDL's native
    threads use every CPU the process may run on, so N alone changes nothing.
    spark://: `cores` → total-executor-cores split over `num_executors` executors,
    `memory` → executor memory.
    """
    values = request.setting.as_dict()
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
            argv += [f"--{flag}", values[name]]
    for name, value in request.hyperparameters.items():
        argv += [f"--{app.hyperparameter_flags[name]}", str(value)]
    argv += ["--epochs", str(request.epochs), "--checkpoint", request.checkpoint_dir]
    if 0 < request.decide_after < request.epochs:
        argv += ["--decideAfter", str(request.decide_after)]
        argv += ["--decisionFile", str(decision_path(request))]
    return argv


# Each segment runs under pipetune/lifeline.py, which stops the job's process group when this
# process ends, so that a crashed tuner leaves no job training on.
LIFELINE = [sys.executable, "-I", str(Path(lifeline.__file__))]


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
    """Where the tuner's answer to a paused segment goes (beside the segment's log)."""
    return Path(request.log_path + ".decision.json")


def write_decision(path: Path, epoch: int, go_on: bool) -> None:
    """Atomically, so the polling app never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"epoch": epoch, "continue": go_on}))
    os.replace(tmp, path)


class SparkSubmitBackend(Backend):
    """One spark-submit per segment against the app config's master."""

    def __init__(
        self,
        app: AppConfig,
        env: SparkEnvironment,
        energy: EnergySource,
        cwd: Path,
        profiler: ProfilerSetup | None = None,
    ) -> None:
        self.app = app
        self.env = env
        self.energy = energy
        self.profiler = profiler
        self.cwd = cwd
        self._proc: subprocess.Popen[str] | None = None

    def run_segment(
        self,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None = None,
    ) -> SegmentResult:
        argv = spark_submit_argv(self.env, self.app, request)
        Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
        decision_path(request).unlink(missing_ok=True)  # never an answer from an earlier try
        with open(request.log_path, "a", encoding="utf-8") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            return self._run(argv, request, on_epoch, decide, log)

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _kill_group(proc)

    def _run(
        self,
        argv: list[str],
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None,
        log: IO[str],
    ) -> SegmentResult:
        loopback = (
            self.app.is_local or "127.0.0.1" in self.app.master or "localhost" in self.app.master
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            [*LIFELINE, *argv],
            stdin=subprocess.PIPE,  # the lifeline: closed when we end, however we end
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            cwd=self.cwd,
            env=self.env.process_env(loopback),
            start_new_session=True,  # its own process group: a timeout kills the whole tree
        )
        self._proc = proc
        state: dict[str, Any] = {"app_id": ""}
        extra = None if self.app.is_local else (lambda: executor_processes(state["app_id"]))
        meter = self.energy.segment(proc.pid, extra)
        first = last = meter.mark()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _kill_group(proc)

        watchdog = threading.Timer(self.app.timeout_s, on_timeout)
        watchdog.daemon = True
        watchdog.start()
        epochs: list[EpochReport] = []
        tail: deque[str] = deque(maxlen=40)
        ended = False
        profiling: EpochProfile | None = None
        extra_info: dict[str, Any] = {}
        paused: Paused | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                event = parse_event(line)
                if event is None:
                    continue
                kind = event["event"]
                if kind == "start":
                    state["app_id"] = str(event.get("app_id", ""))
                    last = meter.mark()
                    if request.profile and self.profiler is not None:
                        profiling = self._begin_profile(proc.pid, state)
                elif kind == "epoch":
                    now = meter.mark()
                    if profiling is not None:
                        extra_info.update(_end_profile(profiling))
                        profiling = None
                    report = epoch_report(event, meter.between(last, now))
                    last = now
                    self._check_echo(request, report)
                    epochs.append(report)
                    on_epoch(report)
                elif kind == "pause":
                    paused = self._pause(request, decide, epochs, extra_info, meter, first, started)
                elif kind == "end":
                    ended = True
            rc = proc.wait()
        except EventError as exc:
            _kill_group(proc)
            raise AppContractError(str(exc), "".join(tail)) from None
        except BaseException:
            _kill_group(proc)  # Ctrl-C or a contract error: never leave a JVM behind
            raise
        finally:
            watchdog.cancel()
            if proc.stdin is not None:
                proc.stdin.close()
            if profiling is not None:
                profiling.abort()
            end = meter.close()
            self._proc = None
        wall = time.monotonic() - started
        if timed_out.is_set():
            raise SegmentFailed(f"timed out after {self.app.timeout_s:g} s", "".join(tail))
        if rc != 0 or not ended:
            raise SegmentFailed(f"spark-submit exited with status {rc}", "".join(tail))
        expected = paused.after if paused and not paused.continued else request.epochs
        if len(epochs) != expected:
            raise AppContractError(
                f"asked for {expected} epoch(s), the app reported {len(epochs)}",
                "".join(tail),
            )
        energy: Energy = meter.between(first, end)
        if meter.fallbacks:
            extra_info["energy_fallbacks"] = meter.fallbacks
        extra_info["power"] = meter.power_series(first, end)
        return SegmentResult(epochs, wall, energy, state["app_id"], extra_info, paused)

    def _pause(
        self,
        request: SegmentRequest,
        decide: DecideCallback | None,
        epochs: list[EpochReport],
        extra_info: dict[str, Any],
        meter: Any,
        first: Any,
        started: float,
    ) -> Paused:
        """The app waits after `decide_after` epochs: ask the tuner, write its answer."""
        if len(epochs) != request.decide_after:
            raise EventError(
                f"the app paused after {len(epochs)} epoch(s), asked to after "
                f"{request.decide_after}"
            )
        wall = time.monotonic() - started
        energy = meter.between(first, meter.mark())
        pause = Pause(tuple(epochs), wall, energy, extra_info.get("profile"))
        go_on = decide(pause) if decide is not None else True
        write_decision(decision_path(request), epochs[-1].epoch, go_on)
        return Paused(len(epochs), go_on, wall, energy)

    def _begin_profile(self, root_pid: int, state: dict[str, Any]) -> EpochProfile | None:
        assert self.profiler is not None
        extra = None
        if not self.app.is_local:
            extra = lambda: [p.pid for p in executor_processes(state["app_id"])]  # noqa: E731
        try:
            return EpochProfile(self.profiler, root_pid, extra)
        except (PipeTuneError, OSError) as exc:
            state["profile_error"] = str(exc)
            return None

    def _check_echo(self, request: SegmentRequest, report: EpochReport) -> None:
        wrong = echo_mismatches(
            request.hyperparameters, self.app.hyperparameter_flags, report.echoed
        )
        if wrong:
            raise EventError(
                "the app did not receive the hyperparameters sent: " + "; ".join(wrong)
            )


def _end_profile(profiling: EpochProfile) -> dict[str, Any]:
    """The profile of the epoch just reported; a failure is recorded, never fatal."""
    try:
        return {"profile": profiling.end().to_dict()}
    except (PipeTuneError, OSError, ValueError) as exc:
        return {"profile_error": str(exc)}


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
