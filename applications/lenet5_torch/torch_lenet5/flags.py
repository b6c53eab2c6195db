"""The app's flags: the BigDL app's hyperparameters and data flags, the contract's standard
flags, the threads of a launch, and what the TorchDistributor launcher adds. No torch import,
so the launcher checks an app command line before it starts anything."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn

from pipetune import contract

PROG = "lenet5_torch.py"


class FlagParser(argparse.ArgumentParser):
    """Flag errors become an `error` event too, then exit 2 (as argparse does)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        contract.emit(contract.error_event(message))
        sys.exit(2)


def parser() -> FlagParser:
    p = FlagParser(prog=PROG, description="LeNet-5 on PyTorch for PipeTune (a trial segment)")
    p.add_argument("--batchSize", type=int, default=128)
    p.add_argument("--learningRate", type=float, default=0.05)
    p.add_argument(
        "--learningRateDecay",
        type=float,
        default=0.0,
        help="lr / (1 + iterations x decay), BigDL's default schedule",
    )
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument(
        "--dataPath", default="", help="directory with MNIST IDX files; else sklearn digits"
    )
    p.add_argument(
        "--trainSize",
        type=int,
        default=None,
        help="digits: augmented training samples (default 6144); MNIST: cap (default/0: all)",
    )
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
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
    if args.trainSize is not None and args.trainSize < 0:
        problems.append("--trainSize must be >= 0")
    if args.cores < 0:
        problems.append("--cores must be >= 0")
    if not args.checkpoint.strip():
        problems.append("--checkpoint must not be empty")
    if problems:
        p.error("; ".join(problems))
    return args


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly the parsed values, the BigDL app's fields: echoed in every event, stored in
    meta.json."""
    return {
        "batchSize": args.batchSize,
        "learningRate": args.learningRate,
        "learningRateDecay": args.learningRateDecay,
        "momentum": args.momentum,
        "seed": args.seed,
        "trainSize": args.trainSize,
    }
