"""A segment's start-up, split into its phases (what the tuner measures and what the app says).

Everything a segment spends outside its epochs: the launch (spark-submit's JVM up to the app's
Python, measured from the app's `python_at`), the app's own phases from its `start` event
(Python and imports, checks, Spark context, data, model or checkpoint load), its checkpoint save
(`save_s` in `end`) and the teardown after it, to the process's exit. What no phase covers
(pauses, the JVM's own start before Python on the other side of the clock) is the rest of the
segment's `startup_s`.
"""

from __future__ import annotations

import time
from typing import Any


class StartupPhases:
    """A segment's time outside its epochs, by phase: the launch (spark-submit's JVM up to the
    app's Python), the phases the app reports in its `start` event (Spark context, data,
    model, ...), its checkpoint save (from `end`) and the teardown after it (to the exit)."""

    def __init__(self, launched_at: float) -> None:
        self.launched_at = launched_at  # unix time, just before the process was started
        self.seconds: dict[str, float] = {}
        self.ended_at: float | None = None

    def started(self, startup: Any) -> None:
        if not isinstance(startup, dict):
            return
        python_at = startup.get("python_at")
        if isinstance(python_at, (int, float)) and python_at >= self.launched_at - 1.0:
            self.seconds["launch"] = max(0.0, python_at - self.launched_at)
        phases = startup.get("phases_s")
        if isinstance(phases, dict):
            for name, value in phases.items():
                if isinstance(value, (int, float)) and value >= 0:
                    self.seconds[str(name)] = float(value)

    def ended(self, save_s: Any) -> None:
        self.ended_at = time.time()
        if isinstance(save_s, (int, float)) and save_s >= 0:
            self.seconds["save"] = float(save_s)

    def finished(self) -> dict[str, float]:
        """The phases in seconds, the teardown (end event to now, the process gone) last."""
        if self.ended_at is not None:
            self.seconds["teardown"] = max(0.0, time.time() - self.ended_at)
        return {name: round(s, 3) for name, s in self.seconds.items()}
