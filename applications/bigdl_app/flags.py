"""The flags every BigDL app shares: SGD, seed, partitions and the contract's standard flags."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from pipetune import contract


def add_training_flags(
    parser: argparse.ArgumentParser, batch_size: int, learning_rate: float
) -> None:
    """SGD's hyperparameters (with this app's defaults), the seed and the partitions."""
    parser.add_argument("--batchSize", type=int, default=batch_size)
    parser.add_argument("--learningRate", type=float, default=learning_rate)
    parser.add_argument("--learningRateDecay", type=float, default=0.0)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--partitions", type=int, default=0, help="data partitions (0: default parallelism)"
    )


def training_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the shared flags, each problem named."""
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
    if args.partitions < 0:
        problems.append("--partitions must be >= 0")
    if not args.checkpoint.strip():
        problems.append("--checkpoint must not be empty")
    return problems


def parse_flags(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    app_problems: Callable[[argparse.Namespace], list[str]] | None = None,
) -> argparse.Namespace:
    """Parse `argv` with the standard flags added; exit 2 naming every problem at once
    (`app_problems` is called with the parsed flags for the app's own)."""
    contract.add_standard_flags(parser)
    args = parser.parse_args(argv)
    problems = training_problems(args) + (app_problems(args) if app_problems else [])
    if problems:
        parser.error("; ".join(problems))
    return args
