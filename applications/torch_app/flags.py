"""The flags every torch app shares: SGD's hyperparameters, the seed, the threads of a launch,
what the TorchDistributor launcher adds, and the contract's standard flags; the app's own
(its data and model) come from its `Workload`. No torch import, so the launcher checks an app
command line before it starts anything."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn

from pipetune import contract

from .workload import Workload


class FlagParser(argparse.ArgumentParser):
    """Flag errors become an `error` event too, then exit 2 (as argparse does)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        contract.emit(contract.error_event(message))
        sys.exit(2)


def parser(workload: Workload) -> FlagParser:
    p = FlagParser(prog=f"{workload.name}.py", description=workload.description)
    p.add_argument("--batchSize", type=int, default=workload.batch_size)
    p.add_argument("--learningRate", type=float, default=workload.learning_rate)
    p.add_argument(
        "--learningRateDecay",
        type=float,
        default=0.0,
        help="lr / (1 + iterations x decay), BigDL's default schedule",
    )
    p.add_argument("--momentum", type=float, default=0.9)
    workload.add_flags(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cores",
        type=int,
        default=0,
        help="torch threads per process at the start (0: this process's CPUs, shared by the "
        "job's processes on this host); a decision changes them live",
    )
    p.add_argument("--appId", default="", help="(launcher) the Spark application's id")
    p.add_argument(
        "--relay",
        default="",
        help="(launcher) HOST:PORT: rank 0 sends its output there and takes decisions from it",
    )
    contract.add_standard_flags(p)
    return p


def parse_args(workload: Workload, argv: list[str] | None = None) -> argparse.Namespace:
    """The app's flags; exit 2 naming every problem at once (an `error` event too)."""
    p = parser(workload)
    args = p.parse_args(argv)
    problems = sgd_problems(args) + workload.problems(args)
    if args.cores < 0:
        problems.append("--cores must be >= 0")
    if not args.checkpoint.strip():
        problems.append("--checkpoint must not be empty")
    if problems:
        p.error("; ".join(problems))
    return args


def sgd_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if args.batchSize <= 0:
        problems.append("--batchSize must be > 0")
    if not (args.learningRate > 0 and math.isfinite(args.learningRate)):
        problems.append("--learningRate must be a finite number > 0")
    if not (args.learningRateDecay >= 0 and math.isfinite(args.learningRateDecay)):
        problems.append("--learningRateDecay must be a finite number >= 0")
    if not 0 <= args.momentum < 1:
        problems.append("--momentum must be in [0, 1)")
    if args.epochs < 1:
        problems.append("--epochs must be >= 1")
    return problems


def sgd_hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """The shared flags' echoed values, as the BigDL apps name them (the app adds its own)."""
    return {
        "batchSize": args.batchSize,
        "learningRate": args.learningRate,
        "learningRateDecay": args.learningRateDecay,
        "momentum": args.momentum,
    }
