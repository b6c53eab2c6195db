"""The training and validation data of one rank, made by the BigDL app's own data code.

`applications/lenet5/data.py` decides everything (source, split, augmentation, normalisation),
so the same flags give the same samples on both engines. Rank r of n holds what BigDL's
partition r of n holds; the shards of all ranks, in rank order, are the whole set, whatever n
(sample i depends on the seed and i only). Labels here are 0-based, as torch's NLL loss wants.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from torch_app import workload
from torch_app.workload import AppError, Shard

SHARED_DATA = Path(__file__).resolve().parents[2] / "lenet5" / "data.py"


def _load_shared_data() -> ModuleType:
    """applications/lenet5/data.py, imported by path under its own name: the two apps are
    scripts, not packages, and this keeps `data` off sys.path."""
    name = "lenet5_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SHARED_DATA)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the shared data code {SHARED_DATA}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


data = _load_shared_data()


class DataError(AppError, ValueError):
    """The data the flags name cannot be read."""


@dataclass(frozen=True)
class DataPlan(workload.DataPlan):
    """Which data a trial uses, from its flags: MNIST IDX files when `data_path` holds them,
    else scikit-learn's digits augmented to `train_size` samples."""

    source: str  # "mnist-idx" or "sklearn-digits"
    train_size: int
    seed: int
    mnist_dir: str = ""
    limit: int = 0  # MNIST: cap on training samples (0: all)

    @classmethod
    def from_flags(cls, data_path: str, train_size: int | None, seed: int) -> DataPlan:
        if data.find_mnist_files(data_path) is not None:
            mnist_dir = os.path.abspath(data_path)
            try:
                total, _ = data.check_mnist(mnist_dir, train_size or 0)
            except ValueError as exc:
                raise DataError(f"bad MNIST data: {exc}") from exc
            return cls("mnist-idx", total, seed, mnist_dir, train_size or 0)
        if data_path:
            print(
                f"lenet5_torch: warning: --dataPath {data_path!r} holds no MNIST IDX files; "
                "using scikit-learn digits",
                file=sys.stderr,
            )
        return cls("sklearn-digits", train_size or data.DEFAULT_DIGITS_TRAIN_SIZE, seed)

    def identity(self) -> dict[str, Any]:
        """What must not change across the segments of one trial (stored in meta.json); the
        same fields as the BigDL app's."""
        return {"source": self.source, "train_samples": self.train_size, "seed": self.seed}

    def key(self) -> DataPlan:
        return self  # every field makes the data

    def load(self, rank: int = 0, ranks: int = 1) -> Shard:
        return load_shard(self, rank, ranks)


def load_shard(plan: DataPlan, rank: int = 0, ranks: int = 1) -> Shard:
    """Rank `rank`'s share of the training and validation sets: float32 (n, 1, 28, 28)
    images and 0-based int64 labels."""
    if plan.source == "mnist-idx":
        train = data.mnist_partition(plan.mnist_dir, "train", plan.limit, rank, ranks)
        val = data.mnist_partition(plan.mnist_dir, "test", 0, rank, ranks)
    else:
        split = data.digits_split(plan.seed)
        train = data.digits_train_partition(split, plan.seed, plan.train_size, rank, ranks)
        vx, vy = data.digits_validation(split)
        start, count = data.partition_range(len(vx), ranks, rank)
        val = vx[start : start + count], vy[start : start + count]
    return Shard(
        train_x=np.ascontiguousarray(train[0], dtype=np.float32),
        train_y=np.asarray(train[1], dtype=np.int64) - data.LABEL_OFFSET,
        val_x=np.ascontiguousarray(val[0], dtype=np.float32),
        val_y=np.asarray(val[1], dtype=np.int64) - data.LABEL_OFFSET,
        train_samples=plan.train_size,
        classes=data.NUM_CLASSES,
    )
