"""LeNet-5's part of a torch app (torch_app/workload.py): its data flags, the BigDL app's
hyperparameter echo, its data and its model. No torch import until the model is built."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from torch_app import flags
from torch_app.workload import Shard, Workload

from .samples import DataPlan

if TYPE_CHECKING:
    from torch import nn


class LeNet5(Workload):
    name = "lenet5_torch"
    description = "LeNet-5 on PyTorch for PipeTune (a trial segment)"
    batch_size = 128
    learning_rate = 0.05
    path_flags = ("--dataPath",)

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dataPath", default="", help="directory with MNIST IDX files; else sklearn digits"
        )
        parser.add_argument(
            "--trainSize",
            type=int,
            default=None,
            help="digits: augmented training samples (default 6144); MNIST: cap (default/0: all)",
        )

    def problems(self, args: argparse.Namespace) -> list[str]:
        if args.trainSize is not None and args.trainSize < 0:
            return ["--trainSize must be >= 0"]
        return []

    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        """The BigDL app's fields."""
        return {**flags.sgd_hyperparameters(args), "seed": args.seed, "trainSize": args.trainSize}

    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        return DataPlan.from_flags(args.dataPath, args.trainSize, args.seed)

    def build_model(self, args: argparse.Namespace, shard: Shard) -> nn.Module:
        from .model import build_lenet5

        return build_lenet5(shard.classes)
