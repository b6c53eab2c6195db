"""What a trial's plan decides from: its segments so far and the journaled recognition answer.

A plan is a pure function of a `TrialHistory`, so a resumed trial, rebuilt from the journal,
continues exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipetune.records import SegmentRecord, SystemSetting


@dataclass(frozen=True)
class Recognized:
    """A recognition hit: the recurring job's best known setting, and what it measured
    there (`epoch_s`, `energy_j`: for the when-it-pays test)."""

    setting: SystemSetting
    values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, result: dict[str, Any] | None) -> Recognized | None:
        """The hit in a journaled look-up (recognition/service.py), or None for a miss."""
        if not result or not result.get("hit"):
            return None
        return cls(SystemSetting.of(result["setting"]), dict(result.get("values") or {}))


@dataclass(frozen=True)
class TrialHistory:
    segments: list[SegmentRecord] = field(default_factory=list)
    recognized: Recognized | None = None

    def with_segments(self, more: list[SegmentRecord]) -> TrialHistory:
        return TrialHistory([*self.segments, *more], self.recognized)


def epochs_done(segments: list[SegmentRecord]) -> int:
    return sum(len(s.epochs) for s in segments if s.ok)
