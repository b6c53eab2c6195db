"""What one BigDL app adds to the shared machinery: its flags, data and model.

segment.py runs every app's segments the same way (checkpoint, Spark context, optimizer, the
training loop with its pauses, the save); an app says only what differs: a `Workload` (flags,
echoed hyperparameters, model, optimizer) and the `DataPlan` its flags make.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bigdl_app.session import Dataset


class DataPlan(ABC):
    """Which data a segment trains on, decided on the driver from its flags before Spark
    starts (reading flags and file headers only: the data itself is made by `build`)."""

    source: str  # where the data comes from, named in the `start` event

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What must not change across the segments of one trial (stored in meta.json)."""

    @abstractmethod
    def key(self, partitions: int) -> Any:
        """What makes the data: a reused process keeps data whose key is equal (==)."""

    @abstractmethod
    def build(self, sc: Any, partitions: int) -> Dataset:
        """The training and validation RDD[Sample], cached, and their sizes."""

    def prefetch(self) -> None:
        """Start driver-side work that may overlap the Spark context's start (a thread)."""
        return None  # by default, all of it is done in `build`

    def describe(self) -> dict[str, Any]:
        """Fields this data adds to the `start` event."""
        return {"data_source": self.source}


class Workload(ABC):
    """One BigDL app: a model trained with SGD (momentum, learning-rate decay) on its data."""

    name: str  # the app's name: its messages, Spark names and checkpoint temporaries

    @property
    @abstractmethod
    def py_files(self) -> Sequence[Path]:
        """Modules the executors import (shipped with SparkContext.addPyFile)."""

    @abstractmethod
    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        """The app's flags (bigdl_app.flags.parse_flags); exits 2 on bad ones."""

    @abstractmethod
    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        """Exactly the parsed values; echoed in every event and stored in meta.json."""

    @abstractmethod
    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        """The data these flags ask for; AppError when it cannot be had."""

    @abstractmethod
    def build_model(self, args: argparse.Namespace, plan: DataPlan) -> Any:
        """A fresh model (BigDL's RNG is seeded first), after `plan.build`."""

    def optim_method(self, args: argparse.Namespace) -> Any:
        """A fresh SGD from the shared flags (bigdl_app.flags)."""
        from bigdl.dllib.optim.optimizer import SGD

        return SGD(
            learningrate=args.learningRate,
            learningrate_decay=args.learningRateDecay,
            momentum=args.momentum,
            dampening=0.0,
            nesterov=False,
        ).value

    def criterion(self) -> Any:
        """The training loss: negative log-likelihood of the model's LogSoftMax."""
        from bigdl.dllib.nn.criterion import ClassNLLCriterion

        return ClassNLLCriterion()
