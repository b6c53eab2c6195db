"""Runs a torch app as a job of several processes through pyspark's TorchDistributor.

    python LAUNCHER --processes N [--master URL] <app flags>

Each app has its launcher, a script that calls `main(APP, workload)` (as
applications/lenet5_torch/distributor.py does for lenet5_torch.py). The launcher is the
process the tuner starts and reads: it takes the app's flags (checked here first, through the
app's workload), starts a Spark session and has TorchDistributor start N training processes
over gloo, each running the app script, then exits with the job.

* A `local[...]` master (the default, `local[1]`): local_mode=True. torchrun runs the N
  processes on this host, and their output comes back through this process's stdout, so
  rank 0's events reach the tuner as they are; decisions are read from the decision file
  itself.
* Any other master (`spark://...`): local_mode=False. Each process runs under a barrier task
  on an executor, where its stdout goes to the executor's log. Rank 0 then connects back to
  a relay this launcher opens (relay.py): its events come out of this process's
  stdout, and each decision written to the decision file here is carried to it.

Its exit status is the job's, read from the events (watch.py: pyspark's torchrun wrapper hides
the processes' own). No torch import: the launcher needs none.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipetune import contract

from . import flags
from .relay import RelayServer
from .watch import EventWatch
from .workload import Workload

PATH_FLAGS = ("--checkpoint", "--decisionFile")  # and the workload's `path_flags`


def parse_launcher_args(app: Path, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's own flags, and the app's (all the others)."""
    p = argparse.ArgumentParser(
        description=f"Run {app.name} through TorchDistributor (all other flags: the app's)",
    )
    p.add_argument("--processes", type=int, default=2, help="training processes (ranks)")
    p.add_argument(
        "--master",
        default="",
        help="Spark master (default: spark-submit's, else local[1]); a local one runs the "
        "processes on this host (local_mode=True), any other on executors",
    )
    launcher, app_argv = p.parse_known_args(argv)
    if launcher.processes < 1:
        p.error("--processes must be >= 1")
    return launcher, app_argv


def absolute_paths(argv: list[str], path_flags: tuple[str, ...]) -> list[str]:
    """The app flags with their paths made absolute: on an executor the app runs elsewhere."""
    out = list(argv)
    paths = PATH_FLAGS + path_flags
    for i, arg in enumerate(out):
        name, eq, value = arg.partition("=")
        if name in paths and eq and value:
            out[i] = f"{name}={os.path.abspath(value)}"
        elif arg in paths and i + 1 < len(out) and out[i + 1]:
            out[i + 1] = os.path.abspath(out[i + 1])
    return out


def train(app: Path, launcher: argparse.Namespace, app_argv: list[str], decision_file: str) -> None:
    from pyspark.ml.torch.distributor import TorchDistributor
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app.stem)
    if launcher.master:
        builder = builder.master(launcher.master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit, which names one
        builder = builder.master("local[1]")  # the processes are torchrun's, not Spark's
    spark = builder.getOrCreate()
    relay = None
    try:
        master = spark.sparkContext.master or ""
        local = master == "local" or master.startswith("local[")
        argv = [*app_argv, "--appId", spark.sparkContext.applicationId]
        if not local:
            host = str(spark.conf.get("spark.driver.host"))  # executors reach the driver here
            decisions = Path(decision_file) if decision_file else None
            relay = RelayServer(host, decisions, sys.stdout).start()
            argv += ["--relay", relay.address]
        distributor = TorchDistributor(
            num_processes=launcher.processes, local_mode=local, use_gpu=False
        )
        distributor.run(str(app), *argv)
    finally:
        if relay is not None:
            relay.close()
        spark.stop()


def prepare_environment() -> None:
    """Events must reach the tuner the moment they are written: torchrun's output passes two
    Python processes (pyspark's torchrun wrapper, then this one) that would otherwise hold it
    in block buffers while the app waits for a decision."""
    os.environ["PYTHONUNBUFFERED"] = "1"
    # The job's processes end with their segment: the next one starts them anew.
    os.environ.pop(contract.NEXT_FILE_ENV, None)


def fail(message: str) -> int:
    print(f"{Path(sys.argv[0]).stem}: error: {message}", file=sys.stderr, flush=True)
    contract.emit(contract.error_event(message))
    return 1


def main(app: Path, workload: Workload, argv: list[str] | None = None) -> int:
    """Run the app script `app`, whose flags `workload` reads, as the job; the exit status."""
    launcher, app_argv = parse_launcher_args(app, sys.argv[1:] if argv is None else argv)
    app_args = flags.parse_args(workload, app_argv)  # fails here, before Spark starts (exit 2)
    prepare_environment()
    watch = EventWatch(sys.stdout)
    sys.stdout = watch  # pyspark writes torchrun's output to sys.stdout, the relay too
    try:
        decision_file = os.path.abspath(app_args.decisionFile) if app_args.decisionFile else ""
        train(app, launcher, absolute_paths(app_argv, workload.path_flags), decision_file)
    except Exception as exc:  # Spark or TorchDistributor failed
        lines = str(exc).strip().splitlines()
        return fail(f"TorchDistributor: {type(exc).__name__}: {lines[0] if lines else ''}")
    if watch.failed:
        return 1  # the app said why
    if not watch.ended:
        return fail("the training processes ended without saving (no `end` event); see above")
    return 0
