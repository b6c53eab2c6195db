"""Live progress on the terminal: one line per trial, rewritten in place on a TTY."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from pipetune.records import Role, SystemSetting


class Progress:
    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self._live = self.stream.isatty()
        self._open_line = False
        self._trial = ""

    def note(self, text: str) -> None:
        self._emit(text, final=True)

    def trial_started(self, trial_id: str, number: int, total: int, hyper: dict[str, Any]) -> None:
        hp = " ".join(f"{k}={_fmt(v)}" for k, v in hyper.items())
        self._trial = f"trial {number + 1}/{total} {trial_id} [{hp}]"
        self._emit(f"{self._trial} starting", final=False)

    def segment_started(
        self, setting: SystemSetting, role: Role, first_epoch: int, epochs: int
    ) -> None:
        what = _WHAT[role]
        last = first_epoch + epochs - 1
        span = f"epoch {first_epoch}" if epochs == 1 else f"epochs {first_epoch}-{last}"
        self._emit(
            f"{self._trial} {setting.label() or 'default'} {what} {span}: starting Spark",
            final=False,
        )

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

    def _emit(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if self._live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_WHAT = {Role.PROBE: "probe", Role.TRAIN: "train", Role.WARMUP: "warm-up"}
