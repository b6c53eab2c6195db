"""The smallest PipeTune app: logistic regression on Spark, following pipetune/contract.py.

    spark-submit [spark options] applications/minimal/minimal.py \
        [--learningRate LR] --epochs K --checkpoint DIR [--decisionFile F]

Each epoch is one pass of full-batch gradient steps over seeded synthetic data, the gradient
summed by a Spark job over `cores` partitions. docs/APPS.md walks through it; a test runs it
through the tuner.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from pipetune import contract

FEATURES, SAMPLES, STEPS_PER_EPOCH = 20, 4000, 40


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="minimal.py")
    parser.add_argument("--learningRate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    contract.add_standard_flags(parser)  # --epochs --checkpoint --decisionFile ...
    return parser.parse_args(argv)


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SAMPLES, FEATURES))
    y = (x @ rng.normal(size=FEATURES) + 0.5 * rng.normal(size=SAMPLES) > 0).astype(float)
    return x, y


def gradient(chunk: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    x, y, w = chunk
    p = 1.0 / (1.0 + np.exp(-x @ w))
    return x.T @ (p - y)


def load(ckpt: Path, hp: dict) -> tuple[np.ndarray, int]:
    """Weights and epochs done: resume from the checkpoint when there is one."""
    meta = contract.read_meta(ckpt)
    if meta is None:
        return np.zeros(FEATURES), 0
    if meta.get("hyperparameters") != hp:
        raise SystemExit(f"checkpoint {ckpt} belongs to other hyperparameters")
    return np.load(ckpt / "weights.npy"), int(meta["epochs_done"])


def save(ckpt: Path, w: np.ndarray, epochs_done: int, hp: dict) -> None:
    """Write beside, then swap in: a reader sees a whole checkpoint or the old one."""
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "weights.npy", w)
    contract.write_meta(tmp, {"epochs_done": epochs_done, "hyperparameters": hp})
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)


def main() -> int:
    args = parse_args()
    from pyspark import SparkContext

    sc = SparkContext.getOrCreate()
    hp = {"learningRate": args.learningRate}
    ckpt = Path(args.checkpoint)
    w, start = load(ckpt, hp)
    x, y = make_data(args.seed)
    cores = sc.defaultParallelism
    contract.emit(contract.start_event(sc.applicationId, start, hp))
    decisions = Path(args.decisionFile) if args.decisionFile else None
    next_pause, epoch, last = (start if decisions else -1), start, start + args.epochs
    while True:
        if epoch == next_pause and decisions is not None:
            decision = contract.await_decision(decisions, epoch, args.decisionTimeout)
            if decision is None or not decision.go_on:
                break
            cores = int(decision.live.get("cores", cores))  # our live parameter: partitions
            next_pause = epoch + decision.pause_after if decision.pause_after else -1
        if epoch >= last:
            break
        epoch += 1
        t0 = time.perf_counter()
        step_s = []
        for _ in range(STEPS_PER_EPOCH):
            s0 = time.perf_counter()
            parts = zip(np.array_split(x, cores), np.array_split(y, cores), strict=True)
            chunks = [(xc, yc, w) for xc, yc in parts]
            w = w - args.learningRate * sc.parallelize(chunks, cores).map(gradient).sum() / SAMPLES
            step_s.append(time.perf_counter() - s0)
        duration = time.perf_counter() - t0
        accuracy = float(np.mean(((x @ w) > 0) == y))
        in_force = {"cores": cores, "cpus": sorted(os.sched_getaffinity(0))}
        contract.emit(
            contract.epoch_event(
                epoch, duration, accuracy, hp, samples=SAMPLES, system=in_force, iteration_s=step_s
            )
        )
        if epoch >= last:
            break
    save(ckpt, w, epoch, hp)
    contract.emit(contract.end_event(epoch, args.checkpoint))
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
