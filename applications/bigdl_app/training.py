"""Training a BigDL model epoch by epoch, with the pauses and live core counts the tuner asks for.

`TrainingLoop` runs one segment's epochs: one `optimize()` per epoch (or per window of
iterations inside one), each epoch validated and reported; `LiveEngine` applies what may
change between them (BigDL's core number); `epoch_iterations` reads each iteration's loss and
wall time from BigDL's TrainSummary.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bigdl_app.checkpoint import optim_state
from pipetune import contract

EVAL_BATCH_SIZE = 128
emit = contract.emit


class EpochIterations:
    """One epoch's iterations from BigDL's TrainSummary: losses and wall times."""

    def __init__(self, loss: list[float], seconds: list[float]) -> None:
        self.loss = loss
        self.seconds = seconds


def epoch_iterations(summary: Any, after_step: int, batch_size: int) -> tuple[EpochIterations, int]:
    """The iterations logged after ``after_step``, and the last step logged.

    Each iteration's wall time comes from BigDL's "Throughput" scalar (records per second of
    that iteration, measured by the optimizer around the whole iteration); the tuner compares
    settings on these rather than on whole epochs, whose first iterations pay JIT warm-up.
    """
    losses = summary.read_scalar("Loss")  # rows of (iteration, loss, wall clock)
    loss = [float(r[1]) for r in losses if int(r[0]) > after_step]
    last = max([int(r[0]) for r in losses], default=after_step)
    try:
        rates = summary.read_scalar("Throughput")
    except Exception:  # an older summary without it: no per-iteration times
        rates = []
    seconds = [
        batch_size / float(r[1]) for r in rates if int(r[0]) > after_step and float(r[1]) > 0
    ]
    return EpochIterations(loss, seconds), last


class LiveEngine:
    """What the launcher may change between epochs of a running job: BigDL's core number.

    BigDL reads `Engine.coreNumber()` at every `optimize()` and re-clones one model replica
    per core (on a cluster the executors take it from the task closure), so a new value
    takes effect at the next epoch. The launcher moves the processes to the matching CPUs;
    `in_force()` echoes both, and the launcher checks them.
    """

    def __init__(self, sc: Any, batch_size: int, nodes: int) -> None:
        utils = sc._jvm.com.intel.analytics.bigdl.dllib.utils
        self._engine = getattr(getattr(utils, "Engine$"), "MODULE$")
        self.batch_size = batch_size
        self.nodes = nodes

    def cores(self) -> int:
        return int(self._engine.coreNumber())

    def apply(self, live: dict[str, Any]) -> str | None:
        """Apply the live values; the reason it cannot, or None."""
        unknown = sorted(set(live) - {"cores"})
        if unknown:
            return f"no live parameter {unknown[0]!r} in this app (live: cores)"
        cores = int(live.get("cores", self.cores()))
        per_node = self.batch_size // self.nodes
        if cores < 1 or per_node % cores:
            return (
                f"cores {cores}: the batch of {self.batch_size} over {self.nodes} node(s) "
                f"does not split into {cores} equal parts"
            )
        if cores != self.cores():
            self._engine.setCoreNumber(cores)
        return None

    def in_force(self) -> dict[str, Any]:
        return {"cores": self.cores(), "cpus": sorted(os.sched_getaffinity(0))}


class TrainingLoop:
    """The epochs of one process, with the pauses the launcher asks for.

    Each `optimize()` call trains to the end of the epoch in progress, or to the end of a
    window of iterations inside it when a decision asked for one (BigDL stops at an iteration
    trigger and the next call goes on from there: its epoch, record count and learning-rate
    step live in the optimizer's state, so an epoch split by windows is validated, counted and
    reported once, when it ends, as if nothing had happened). BigDL draws a new random start
    in its shuffled order at each call, so the rest of a split epoch may see some samples twice
    and others not at all, as a BigDL job resumed mid-epoch does.
    """

    def __init__(
        self,
        app: str,
        args: argparse.Namespace,
        opt: Any,
        model: Any,
        val: Any,
        summary: Any,
        engine: LiveEngine,
        hp: dict[str, Any],
        samples: int,
    ) -> None:
        self.app = app  # the app's name, in its messages
        self.args = args
        self.opt = opt
        self.model = model
        self.val = val
        self.summary = summary
        self.engine = engine
        self.hp = hp
        self.samples = samples
        self.epoch_iterations = -(-samples // args.batchSize)  # BigDL's iterations per epoch
        self.decisions = Path(args.decisionFile) if args.decisionFile else None
        # the epoch in progress: its training seconds, iteration times and losses so far
        self.train_s = 0.0
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def run(self, start_epoch: int, step: int) -> int:
        """Train to `--epochs` more epochs (or a decision to stop); the epochs done."""
        from bigdl.dllib.optim.optimizer import MaxEpoch, MaxIteration, TriggerOr

        epoch, last_epoch = start_epoch, start_epoch + self.args.epochs
        # With a decision file the launcher sets what is live (cores) before the first epoch,
        # then pauses wherever its last decision asked: after a number of epochs or iterations.
        pause_epoch = start_epoch if self.decisions is not None else 0
        window_end = 0  # the step a window ends at
        window: list[float] | None = None  # its iteration times
        paused = self.decisions is not None
        while True:
            if paused:
                if window is not None:
                    in_progress = epoch + (1 if self.seconds else 0)
                    emit(
                        contract.window_event(
                            in_progress,
                            window,
                            epoch_iterations=self.epoch_iterations,
                            system=self.engine.in_force(),
                        )
                    )
                decision = self._decide(epoch, step)
                if decision is None:
                    break
                window_end = step + decision.iterations if decision.iterations else 0
                window = [] if decision.iterations else None
                pause_epoch = epoch + decision.pause_after if decision.pause_after else 0
            if epoch >= last_epoch:
                break
            # BigDL counts epochs from 1 and stops once state("epoch") > MaxEpoch's bound,
            # and once its iteration count ("neval", from 1) is past MaxIteration's.
            trigger = MaxEpoch(epoch + 1)
            if window_end:
                trigger = TriggerOr(trigger, MaxIteration(window_end))
            self.opt.set_end_when(trigger)
            t0 = time.perf_counter()
            self.opt.optimize()
            self.train_s += time.perf_counter() - t0
            iterations, step = epoch_iterations(self.summary, step, self.args.batchSize)
            self.seconds += iterations.seconds
            self.losses += iterations.loss
            if window is not None:
                window += iterations.seconds
            if self._epoch_ended(epoch):
                epoch += 1
                self._report_epoch(epoch)
            if epoch >= last_epoch:
                break  # all its epochs: nothing is left to decide
            if window_end:
                paused = step >= window_end
            else:
                paused = bool(pause_epoch) and epoch == pause_epoch and not self.seconds
        return epoch

    def _decide(self, epoch: int, step: int) -> contract.Decision | None:
        """The launcher's decision at this pause, applied; None to stop here."""
        assert self.decisions is not None
        decision = contract.await_decision(
            self.decisions, epoch, self.args.decisionTimeout, iteration=step
        )
        if decision is None:
            print(f"{self.app}: no decision after epoch {epoch}; stopping", file=sys.stderr)
            return None
        if not decision.go_on:
            return None
        refused = self.engine.apply(decision.live)
        if refused:
            emit(contract.refused_event(epoch, refused))
            return None
        return decision

    def _epoch_ended(self, epoch: int) -> bool:
        """Whether the optimizer's state has moved past epoch `epoch` + 1 (counted from 1)."""
        method = self.opt.value.optimMethods().values().head()
        return (optim_state(method)["epoch"] or 0) > epoch + 1

    def _report_epoch(self, epoch: int) -> None:
        from bigdl.dllib.optim.optimizer import Top1Accuracy

        t0 = time.perf_counter()
        accuracy = float(self.model.evaluate(self.val, EVAL_BATCH_SIZE, [Top1Accuracy()])[0].result)
        eval_s = time.perf_counter() - t0
        loss = float(np.mean(self.losses)) if self.losses else float("nan")
        emit(
            contract.epoch_event(
                epoch,
                self.train_s,
                accuracy,
                self.hp,
                eval_s=eval_s,
                loss=loss,
                samples=self.samples,
                system=self.engine.in_force(),
                iterations=len(self.seconds),
                iteration_s=[round(t, 5) for t in self.seconds],
            )
        )
        self.train_s, self.seconds, self.losses = 0.0, [], []
