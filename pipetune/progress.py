"""Live progress. On a terminal: a progress display (trial k of N, epoch, setting, phase,
elapsed, time left; progress_live.py, with rich) under the lines that stay. Elsewhere (a pipe,
a log file) or with --quiet: plain lines, one per event, the same text as always."""

from __future__ import annotations

import atexit
import sys
from typing import Any, TextIO

from pipetune.progress_live import LiveDisplay, RunStatus
from pipetune.records import Role, SystemSetting


class Progress:
    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self._live = self.stream.isatty()
        self._trial = ""
        self.status = RunStatus()
        self._display: LiveDisplay | None = None
        self._cleanup_registered = False

    def note(self, text: str) -> None:
        self._emit(text, final=True)

    def trial_started(self, trial_id: str, number: int, total: int, hyper: dict[str, Any]) -> None:
        hp = " ".join(f"{k}={_fmt(v)}" for k, v in hyper.items())
        self._trial = f"trial {number + 1}/{total} {trial_id} [{hp}]"
        self.status.trial_started(trial_id, number, total)
        self._emit(f"{self._trial} starting", final=False)

    def segment_started(
        self, setting: SystemSetting, role: Role, first_epoch: int, epochs: int
    ) -> None:
        what = _WHAT[role]
        last = first_epoch + epochs - 1
        span = f"epoch {first_epoch}" if epochs == 1 else f"epochs {first_epoch}-{last}"
        self.status.now_in(setting.label(), "start-up", epochs_at_least=last)
        self._emit(
            f"{self._trial} {setting.label() or 'default'} {what} {span}: starting Spark",
            final=False,
        )

    def going_on(self, setting: SystemSetting, role: Role, window: bool) -> None:
        """A pause was answered: the job goes on at `setting`, for `role` (a window of
        iterations when `window`). Only the live display shows it."""
        self.status.now_in(setting.label(), _WHAT[role] + (" window" if window else ""))
        self._refresh()

    def epoch(
        self,
        setting: SystemSetting,
        role: Role,
        epoch: int,
        total_epochs: int,
        duration_s: float,
        accuracy: float,
    ) -> None:
        what = _WHAT[role]
        self.status.epoch_done(epoch, total_epochs, setting.label(), what)
        self._emit(
            f"{self._trial} {setting.label() or 'default'} {what} "
            f"epoch {epoch}/{total_epochs} {duration_s:.1f} s/epoch acc {accuracy:.3f}",
            final=not self._live,
        )

    def segment_failed(self, setting: SystemSetting, error: str) -> None:
        self._emit(f"{self._trial} {setting.label()} FAILED: {error}", final=True)

    def trial_finished(self, summary: dict[str, Any]) -> None:
        chosen = summary["system"]["chosen"]
        where = SystemSetting.of(chosen).label() if chosen else "-"
        if summary["status"] == "done":
            text = (
                f"{self._trial} done: accuracy {summary['accuracy']:.3f}, chosen {where} "
                f"({summary['system']['source']}), {summary['time']['total_s']:.0f} s, "
                f"{summary['energy']['joules']:.0f} J ({summary['energy']['source']})"
            )
        else:
            text = f"{self._trial} FAILED: {summary['error']}"
        self._emit(text, final=True)
        self.status.running = False
        self.close()  # between trials only lines are shown

    def close(self) -> None:
        """Take the live display off the terminal (it comes back with the next trial)."""
        if self._display is not None:
            self._display.stop()
            self._display = None

    def _emit(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if not self._live:
            if final:
                self.stream.write(text + "\n")
                self.stream.flush()
            return
        if final:
            self._shown().print(text)
        self._refresh()

    def _refresh(self) -> None:
        """Redraw the live display, while a trial runs."""
        if self.quiet or not self._live or not self.status.running:
            return
        self._shown().show()

    def _shown(self) -> LiveDisplay:
        if self._display is None:
            self._display = LiveDisplay(self.stream, self.status)
            if not self._cleanup_registered:  # a run that ends by an error: a clean terminal
                atexit.register(self.close)
                self._cleanup_registered = True
        return self._display


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_WHAT = {Role.PROBE: "probe", Role.TRAIN: "train", Role.WARMUP: "warm-up"}
