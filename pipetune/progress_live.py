"""The terminal's live progress display: where the run is (trial k of N, epoch, setting,
phase), how long it has run and an estimate of the time left from the epochs measured so far.

`RunStatus` is plain state (tested without a terminal); `LiveDisplay` draws it with rich,
imported only when a terminal shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass
class RunStatus:
    """Where the run is, fed by the progress calls; `clock` is injectable for tests."""

    clock: Callable[[], float] = time.monotonic
    trial: str = ""
    number: int = 0  # the trial's, from 0
    trials: int = 0
    epochs: int = 0  # per trial (0: not known yet)
    epoch: int = 0  # the last epoch finished in this trial
    setting: str = ""
    phase: str = ""
    started: float | None = None  # when the first trial of this session started
    measured: int = 0  # epochs finished in this session, start-ups and probes around them
    running: bool = False  # a trial is under way

    def trial_started(self, trial: str, number: int, trials: int) -> None:
        if self.started is None:
            self.started = self.clock()
        self.trial, self.number, self.trials, self.epoch = trial, number, trials, 0
        self.setting, self.phase, self.running = "", "start-up", True

    def now_in(self, setting: str, phase: str, epochs_at_least: int = 0) -> None:
        """The job is in `phase` at `setting`; a segment says how far the trial goes at least
        (its own epochs: a trial's first segment runs all of them when nothing stops it)."""
        self.setting, self.phase = setting, phase
        self.epochs = max(self.epochs, epochs_at_least)

    def epoch_done(self, epoch: int, epochs: int, setting: str, phase: str) -> None:
        self.epoch, self.epochs, self.setting, self.phase = epoch, epochs, setting, phase
        self.measured += 1

    def elapsed_s(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def epochs_left(self) -> int | None:
        if not self.epochs:
            return None
        later_trials = max(0, self.trials - self.number - 1)
        return later_trials * self.epochs + max(0, self.epochs - self.epoch)

    def eta_s(self) -> float | None:
        """Time per epoch so far (its start-ups and probes included) × epochs left."""
        left = self.epochs_left()
        if left is None or not self.measured:
            return None
        return self.elapsed_s() / self.measured * left

    def done_fraction(self) -> tuple[int, int]:
        """Epochs of the whole run done, and in all (0 in all: not known yet)."""
        if not self.epochs:
            return 0, 0
        return self.number * self.epochs + self.epoch, self.trials * self.epochs

    def line(self) -> str:
        epoch = min(self.epoch + 1, self.epochs) if self.epochs else self.epoch + 1
        of = f"/{self.epochs}" if self.epochs else ""
        eta = self.eta_s()
        return (
            f"epoch {epoch}{of} · {self.setting or 'default'} · {self.phase} · "
            f"elapsed {clock_text(self.elapsed_s())} · "
            f"ETA {clock_text(eta) if eta is not None else '–'}"
        )


def clock_text(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class LiveDisplay:
    """A rich progress bar at the bottom of the terminal, redrawn twice a second from the
    status (so elapsed time and ETA move between events); printed lines scroll above it."""

    def __init__(self, stream: TextIO, status: RunStatus) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.status = status
        self.console = Console(file=stream, force_terminal=True, highlight=False)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),
            _status_column(status),
            console=self.console,
            transient=True,
            refresh_per_second=2,
        )
        self._task: Any = None

    def show(self) -> None:
        status = self.status
        done, total = status.done_fraction()
        description = f"trial {status.number + 1}/{status.trials} {status.trial}"
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(description, total=total or None, completed=done)
        self._bar.update(self._task, description=description, completed=done, total=total or None)
        self._bar.refresh()

    def print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


def _status_column(status: RunStatus) -> Any:
    """A rich column that renders the status line afresh at every refresh."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class StatusColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(status.line())

    return StatusColumn()
