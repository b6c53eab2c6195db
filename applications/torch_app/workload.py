"""What one torch app adds to the shared machinery: its flags, its data and its model.

segment.py runs every app's segments the same way (checkpoint, ranks, SGD, the training loop
with its pauses, live threads, the save, process reuse); an app says only what differs: a
`Workload` (its own flags and echoed hyperparameters, its model) and the `DataPlan` its flags
make, which loads each rank's `Shard`. No torch import here: the launcher reads an app's flags
through its workload before anything starts.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn


class AppError(Exception):
    """A failure with a message meant for the user (flags or data that do not fit the job)."""


def partition_range(total: int, parts: int, index: int) -> tuple[int, int]:
    """(start, count) of part `index` when `total` items are split evenly in `parts`: the
    earlier parts take one more (as numpy's array_split and BigDL's partitions)."""
    if parts <= 0 or not 0 <= index < parts:
        raise ValueError(f"part {index} of {parts}")
    base, extra = divmod(total, parts)
    return index * base + min(index, extra), base + (1 if index < extra else 0)


@dataclass(frozen=True)
class Shard:
    """One rank's training and validation samples: float32 inputs, 0-based int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    train_samples: int  # in the whole training set, over all ranks
    classes: int  # labels run from 0 to classes - 1
    about: dict[str, Any] = field(default_factory=dict)  # what the data adds to `start`


class DataPlan(ABC):
    """Which data a segment trains on, decided from its flags (and file headers) before any
    data is made; every rank makes its own shard with `load`."""

    source: str  # where the data comes from, named in the `start` event

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What must not change across the segments of one trial (stored in meta.json)."""

    @abstractmethod
    def key(self) -> Hashable:
        """What makes the data: a reused process keeps data whose key is equal."""

    @abstractmethod
    def load(self, rank: int = 0, ranks: int = 1) -> Shard:
        """Rank `rank`'s share of the training and validation sets; the shards of all ranks,
        in rank order, are the whole sets."""


class Workload(ABC):
    """One torch app: a model trained with SGD (momentum, learning-rate decay) on its data."""

    name: str  # the app script's name without .py: its messages and Spark's app name
    description: str  # its --help
    batch_size: int  # the default of --batchSize
    learning_rate: float  # the default of --learningRate
    path_flags: tuple[str, ...] = ()  # flags naming files: made absolute by the launcher

    @abstractmethod
    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        """The app's own flags (its data and model), after the shared SGD ones."""

    def problems(self, args: argparse.Namespace) -> list[str]:
        """What is wrong with the app's own flags, each problem named."""
        return []

    @abstractmethod
    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        """Exactly the parsed values; echoed in every event and stored in meta.json."""

    @abstractmethod
    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        """The data these flags ask for; AppError when it cannot be had."""

    @abstractmethod
    def build_model(self, args: argparse.Namespace, shard: Shard) -> nn.Module:
        """A fresh model ending in log-probabilities (torch's RNG is seeded first)."""
