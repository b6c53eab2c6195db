"""The training of one segment: iterations, epochs and their validation, and the pauses the
launcher asks for (pipetune/contract.py, "Decisions").

Every rank runs this same loop; rank 0 alone talks to the launcher and hands each decision to
the others, so all take the same steps. A position is the number of iterations done since the
trial began (`step`); the epoch and the place in it follow from it, so a pause may fall
anywhere and the epoch goes on from there exactly as if it had not paused (windows).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipetune import contract

from .batches import Batches
from .live import LiveThreads
from .workload import Shard
from .world import World

EVAL_BATCH_SIZE = 512


class Trainer:
    """One rank's model, optimizer and data: trains an iteration, validates."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        shard: Shard,
        batches: Batches,
        world: World,
        learning_rate: float,
        learning_rate_decay: float,
    ) -> None:
        self.model = model
        self.trained = world.wrap(model)
        self.optimizer = optimizer
        self.batches = batches
        self.world = world
        self.learning_rate = learning_rate
        self.decay = learning_rate_decay
        self.x, self.y = torch.from_numpy(shard.train_x), torch.from_numpy(shard.train_y)
        self.val_x, self.val_y = torch.from_numpy(shard.val_x), torch.from_numpy(shard.val_y)

    def iteration(self, step: int) -> tuple[float, float]:
        """Train iteration `step`; its wall seconds and this rank's summed loss."""
        t0 = time.perf_counter()
        idx = torch.from_numpy(self.batches.indices(step))
        torch.manual_seed(self.batches.random_seed(step))  # dropout: the same after a resume
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate / (1 + step * self.decay)  # BigDL's SGD schedule
        self.trained.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = F.nll_loss(self.trained(self.x[idx]), self.y[idx], reduction="sum")
        # DDP averages over the ranks: scaled so, the gradient is the global batch's mean's
        (loss_sum * (self.world.size / self.batches.global_size(step))).backward()
        self.optimizer.step()
        return time.perf_counter() - t0, float(loss_sum.detach())

    def accuracy(self) -> float:
        """Top-1 accuracy on the whole validation set (each rank scores its share)."""
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(self.val_x), EVAL_BATCH_SIZE):
                out = self.model(self.val_x[start : start + EVAL_BATCH_SIZE])
                correct += int((out.argmax(1) == self.val_y[start : start + EVAL_BATCH_SIZE]).sum())
        counts = self.world.sum(torch.tensor([correct, len(self.val_x)], dtype=torch.float64))
        return float(counts[0] / counts[1]) if counts[1] else float("nan")


class TrainingLoop:
    """The epochs of one segment, with the pauses the launcher asks for."""

    def __init__(
        self,
        trainer: Trainer,
        live: LiveThreads,
        hyperparameters: dict[str, Any],
        decisions: Path | None,
        decision_timeout: float,
        app: str,
    ) -> None:
        self.trainer = trainer
        self.app = app  # names it in messages
        self.world = trainer.world
        self.live = live
        self.hp = hyperparameters
        self.decisions = decisions
        self.decision_timeout = decision_timeout
        self.per_epoch = trainer.batches.epoch_iterations
        # the epoch in progress: its training seconds, iteration times and summed losses
        self.train_s = 0.0
        self.seconds: list[float] = []
        self.loss_sums: list[float] = []
        self.batch_sizes: list[int] = []

    def run(self, step: int, epochs: int) -> int:
        """Train from iteration `step` to the end of `epochs` more epochs, or to a decision
        to stop; the iterations done since the trial began."""
        last_epoch = step // self.per_epoch + epochs
        window_end, pause_epoch = 0, 0
        window: list[float] | None = None  # the seconds of the window's iterations so far
        paused = self.decisions is not None  # with decisions, pause first: the live setting
        while True:
            if paused:
                if window is not None:
                    self._emit_window(step, window)
                decision = self._decide(step)
                if decision is None:
                    break
                window_end = step + decision.iterations if decision.iterations else 0
                window = [] if decision.iterations else None
                done = step // self.per_epoch
                pause_epoch = done + decision.pause_after if decision.pause_after else 0
            if step // self.per_epoch >= last_epoch:
                break
            seconds = self._iteration(step)
            step += 1
            if window is not None:
                window.append(seconds)
            if step % self.per_epoch == 0:
                self._report_epoch(step // self.per_epoch)
            if step // self.per_epoch >= last_epoch:
                break  # all its epochs: nothing is left to decide
            if window_end:
                paused = step >= window_end
            else:
                paused = bool(pause_epoch) and step == pause_epoch * self.per_epoch
        return step

    def _iteration(self, step: int) -> float:
        seconds, loss_sum = self.trainer.iteration(step)
        self.train_s += seconds
        self.seconds.append(seconds)
        self.loss_sums.append(loss_sum)
        self.batch_sizes.append(self.trainer.batches.global_size(step))
        return seconds

    def _decide(self, step: int) -> contract.Decision | None:
        """The launcher's decision at this pause, on every rank, applied; None to stop."""
        decision = None
        if self.world.leader and self.decisions is not None:
            decision = self._await(self.decisions, step)
        decision = self.world.broadcast(decision)
        if decision is not None:
            self.live.apply(decision.live)
        return decision

    def _await(self, path: Path, step: int) -> contract.Decision | None:
        epochs_done = step // self.per_epoch
        decision = contract.await_decision(path, epochs_done, self.decision_timeout, iteration=step)
        if decision is None:
            print(f"{self.app}: no decision at iteration {step}; stopping", file=sys.stderr)
            return None
        if not decision.go_on:
            return None
        refused = self.live.refusal(decision.live)
        if refused:
            contract.emit(contract.refused_event(epochs_done, refused))
            return None
        return decision

    def _emit_window(self, step: int, window: list[float]) -> None:
        if self.world.leader:
            in_progress = step // self.per_epoch + (1 if step % self.per_epoch else 0)
            event = contract.window_event(
                in_progress,
                window,
                epoch_iterations=self.per_epoch,
                system=self.live.in_force(),
            )
            contract.emit(event)

    def _report_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        accuracy = self.trainer.accuracy()
        eval_s = time.perf_counter() - t0
        sums = self.world.sum(torch.tensor(self.loss_sums, dtype=torch.float64))
        means = sums / torch.tensor(self.batch_sizes, dtype=torch.float64)
        loss = float(means.mean()) if len(means) else float("nan")
        if self.world.leader:
            event = contract.epoch_event(
                epoch,
                self.train_s,
                accuracy,
                self.hp,
                eval_s=eval_s,
                loss=loss,
                samples=self.trainer.batches.samples,
                system=self.live.in_force(),
                iterations=len(self.seconds),
                iteration_s=[round(t, 5) for t in self.seconds],
            )
            contract.emit(event)
        self.train_s, self.seconds, self.loss_sums, self.batch_sizes = 0.0, [], [], []
