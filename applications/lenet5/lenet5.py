"""LeNet-5 on BigDL 2.4 (dllib) for PipeTune: a trial segment per spark-submit, or several.

    spark-submit [spark options] applications/lenet5/lenet5.py \
        --epochs K --checkpoint DIR [--batchSize B --learningRate LR ...]

Trains K more epochs, resuming model weights and SGD state from DIR when it holds a
checkpoint, then saves DIR atomically. When the launcher may reuse the process
(PIPETUNE_NEXT_FILE), it then waits for the next segment's flags and runs that one in the
same Spark context. Progress goes to stdout as single lines ``[pipetune] {json}`` (events
"start", "epoch", "end"); see README.md for the contract. This file holds what is LeNet-5's
own (flags, data, model); the segments run in ../bigdl_app/, shared with the other BigDL apps.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# data.py sits next to this file (executors get it through SparkContext.addPyFile), the
# machinery shared by the BigDL apps in ../bigdl_app/.
APP_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(APP_DIR), str(APP_DIR.parent)]
import data  # noqa: E402
from bigdl_app import flags, segment  # noqa: E402
from bigdl_app.errors import AppArgumentParser, AppError  # noqa: E402
from bigdl_app.session import Dataset  # noqa: E402
from bigdl_app.workload import DataPlan, Workload  # noqa: E402

# Measured on the 2-core dev machine: ~5-7 s per epoch at batch 128 in local[2] (README).
DEFAULT_DIGITS_TRAIN_SIZE = data.DEFAULT_DIGITS_TRAIN_SIZE


# ------------------------------------------------------------------------------ flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = AppArgumentParser(
        "lenet5", description="LeNet-5 on BigDL for PipeTune (resumable trial segment)"
    )
    flags.add_training_flags(p, batch_size=128, learning_rate=0.05)
    p.add_argument(
        "--dataPath", default="", help="directory with MNIST IDX files; else sklearn digits"
    )
    p.add_argument(
        "--trainSize",
        type=int,
        default=None,
        help=f"digits: augmented training samples (default {DEFAULT_DIGITS_TRAIN_SIZE}); "
        "MNIST: cap on training samples (default/0: all)",
    )
    return flags.parse_flags(p, argv, _problems)


def _problems(args: argparse.Namespace) -> list[str]:
    if args.trainSize is not None and args.trainSize < 0:
        return ["--trainSize must be >= 0"]
    return []


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly the parsed values; echoed in every event and stored in meta.json."""
    return {
        "batchSize": args.batchSize,
        "learningRate": args.learningRate,
        "learningRateDecay": args.learningRateDecay,
        "momentum": args.momentum,
        "seed": args.seed,
        "trainSize": args.trainSize,
    }


# ------------------------------------------------------------------------------- data


class DigitsPlan(DataPlan):
    """MNIST IDX files when `--dataPath` holds them, else scikit-learn's digits, augmented."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.seed = args.seed
        self.mnist_dir = ""  # MNIST source only
        self.limit = 0  # MNIST source only: cap on training samples (0: all)
        self._split: data.DigitsSplit | None = None
        self._split_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if data.find_mnist_files(args.dataPath) is not None:
            self.source = "mnist-idx"
            self.mnist_dir = os.path.abspath(args.dataPath)
            self.limit = args.trainSize or 0
            try:
                self.train_size, _ = data.check_mnist(self.mnist_dir, self.limit)
            except ValueError as exc:
                raise AppError(f"bad MNIST data: {exc}") from exc
        else:
            if args.dataPath:
                print(
                    f"lenet5: warning: --dataPath {args.dataPath!r} holds no MNIST IDX files; "
                    "using scikit-learn digits",
                    file=sys.stderr,
                )
            self.source = "sklearn-digits"
            self.train_size = args.trainSize or DEFAULT_DIGITS_TRAIN_SIZE

    def prefetch(self) -> None:
        """Compute the digits split in a thread: importing scikit-learn takes ~2 s, which
        overlaps with the SparkContext start (the main thread just waits on the JVM)."""
        if self.source != "sklearn-digits":
            return

        def work() -> None:
            try:
                self._split = data.digits_split(self.seed)
            except BaseException as exc:  # re-raised in the main thread by .split
                self._split_error = exc

        self._thread = threading.Thread(target=work, name="digits-split", daemon=True)
        self._thread.start()

    @property
    def split(self) -> data.DigitsSplit:
        if self._split is None and self._split_error is None:
            if self._thread is None:
                self.prefetch()
            assert self._thread is not None
            self._thread.join()
        if self._split_error is not None:
            raise self._split_error
        assert self._split is not None
        return self._split

    def identity(self) -> dict[str, Any]:
        """What must not change across the segments of one trial (stored in meta.json)."""
        return {"source": self.source, "train_samples": self.train_size, "seed": self.seed}

    def key(self, partitions: int) -> Any:
        return (self.identity(), self.mnist_dir, self.limit, partitions)

    def build(self, sc: Any, partitions: int) -> Dataset:
        return build_dataset(sc, self, partitions)


def build_dataset(sc: Any, plan: DigitsPlan, partitions: int) -> Dataset:
    """Training and validation RDD[Sample], generated inside the partitions and cached."""
    from bigdl.dllib.utils.common import Sample

    def to_samples(x: np.ndarray, y: np.ndarray) -> Iterator[Any]:
        for i in range(len(x)):
            yield Sample.from_ndarray(x[i], np.float32(y[i]))

    seeds = sc.parallelize(range(partitions), partitions)
    if plan.source == "mnist-idx":
        mnist_dir, limit = plan.mnist_dir, plan.limit

        def train_part(idx: int, _it: Any) -> Iterator[Any]:
            return to_samples(*data.mnist_partition(mnist_dir, "train", limit, idx, partitions))

        def val_part(idx: int, _it: Any) -> Iterator[Any]:
            return to_samples(*data.mnist_partition(mnist_dir, "test", 0, idx, partitions))

        val = seeds.mapPartitionsWithIndex(val_part)
    else:
        split_bc = sc.broadcast(plan.split)
        seed, total = plan.seed, plan.train_size

        def train_part(idx: int, _it: Any) -> Iterator[Any]:
            x, y = data.digits_train_partition(split_bc.value, seed, total, idx, partitions)
            return to_samples(x, y)

        vx, vy = data.digits_validation(plan.split)  # ~360 images: fine to ship from the driver
        val = sc.parallelize([(vx[i], vy[i]) for i in range(len(vx))], partitions).map(
            lambda t: Sample.from_ndarray(t[0], np.float32(t[1]))
        )
    train = seeds.mapPartitionsWithIndex(train_part).setName("lenet5-train").cache()
    val = val.setName("lenet5-val").cache()
    return Dataset(train, val, train.count(), val.count())


# ------------------------------------------------------------------------------ model


def build_lenet5(class_num: int = data.NUM_CLASSES) -> Any:
    from bigdl.dllib.nn.layer import (
        Linear,
        LogSoftMax,
        Reshape,
        Sequential,
        SpatialConvolution,
        SpatialMaxPooling,
        Tanh,
    )

    model = Sequential()
    model.add(Reshape([1, 28, 28]))
    model.add(SpatialConvolution(1, 6, 5, 5))
    model.add(Tanh())
    model.add(SpatialMaxPooling(2, 2, 2, 2))
    model.add(SpatialConvolution(6, 12, 5, 5))
    model.add(Tanh())
    model.add(SpatialMaxPooling(2, 2, 2, 2))
    model.add(Reshape([12 * 4 * 4]))
    model.add(Linear(12 * 4 * 4, 100))
    model.add(Tanh())
    model.add(Linear(100, class_num))
    model.add(LogSoftMax())
    return model


class LeNet5(Workload):
    """LeNet-5 on digits: what bigdl_app's segments need from this app."""

    name = "lenet5"

    @property
    def py_files(self) -> list[Path]:
        return [APP_DIR / "data.py"]

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        return parse_args(argv)

    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        return hyperparameters(args)

    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        return DigitsPlan(args)

    def build_model(self, args: argparse.Namespace, plan: DataPlan) -> Any:
        return build_lenet5()


def main(argv: list[str] | None = None) -> int:
    return segment.main(LeNet5(), argv)


if __name__ == "__main__":
    sys.exit(main())
