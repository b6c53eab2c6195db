"""The per-trial plan: an explicit state machine from the trial's history to its next segment.

A plan is a pure function of the segments already run, so a resumed trial continues exactly
where the journal says it stopped. Pipelined trials go

    PROFILING (epoch 1 at the default) → PROBING (one epoch per candidate) → SETTLED → DONE

and fixed trials (v1, v2) run every epoch at one setting.

Continuation: the profiling epoch (when recognition may settle the trial on it) and the last
probe are asked for every remaining epoch with a pause after the first (`decide_after`). At
the pause the tuner asks `continue_after`: when the setting the trial would train at is the
one running, training goes on in the same process and the segment is journaled as its probe
epoch plus a training segment; otherwise it stops, saved, after its one epoch as before. A
restart costs a full start-up (JVM, Spark, data, ~30 s here), more than an epoch.

Switching (`switch`): with "always" (the default: the remaining epochs run at the best
probe, as the mode promises), a pause whose setting is not the target stops and the trial
restarts at the target. With "when-it-pays" it restarts only if the
remaining epochs at the target, plus a start-up, cost less by the objective than the remaining
epochs where it runs: remaining × the paused epoch vs start-up (the paused segment's, as
measured) + remaining × the target's epoch (its probe, or the recognised entry's measurement).
All epochs compared are first epochs of their process, so their warm-up weighs alike.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipetune.config import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import Role, SegmentRecord, SettingSource, SystemSetting


class Phase(enum.StrEnum):
    PROFILING = "profiling"
    PROBING = "probing"
    SETTLED = "settled"
    DONE = "done"


@dataclass(frozen=True)
class PlannedSegment:
    setting: SystemSetting
    epochs: int
    role: Role
    decide_after: int = 0  # pause after this many epochs and ask `continue_after`


def epochs_done(history: list[SegmentRecord]) -> int:
    return sum(len(s.epochs) for s in history if s.ok)


class TrialPlan(ABC):
    """Decides each next segment of one trial from what has run so far."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    @abstractmethod
    def next_segment(self, history: list[SegmentRecord]) -> PlannedSegment | None:
        """The segment to run next, or None when the trial has all its epochs."""

    @abstractmethod
    def chosen(self, history: list[SegmentRecord]) -> tuple[SystemSetting | None, SettingSource]:
        """The setting the trial runs (or will run) its remaining epochs at, and why."""

    def probes(self, history: list[SegmentRecord]) -> list[ProbeResult]:
        return []

    def can_continue_after(self, failed: SegmentRecord, history: list[SegmentRecord]) -> bool:
        """Whether the trial survives this failed segment (only a non-default probe can fail)."""
        return False


class FixedPlan(TrialPlan):
    """Every epoch at one setting: the default (v1) or the searched one (v2)."""

    def __init__(self, epochs: int, setting: SystemSetting, source: SettingSource) -> None:
        super().__init__(epochs)
        self.setting = setting
        self.source = source

    def next_segment(self, history: list[SegmentRecord]) -> PlannedSegment | None:
        remaining = self.epochs - epochs_done(history)
        return PlannedSegment(self.setting, remaining, Role.TRAIN) if remaining > 0 else None

    def chosen(self, history: list[SegmentRecord]) -> tuple[SystemSetting | None, SettingSource]:
        return self.setting, self.source


class PipelinedPlan(TrialPlan):
    """PipeTune: profile and probe one epoch per candidate, then train at the best."""

    def __init__(
        self,
        epochs: int,
        candidates: list[SystemSetting],
        objective: Objective,
        *,
        continuation: bool = False,
        may_recognize: bool = False,
        switch: str = "always",
    ) -> None:
        super().__init__(epochs)
        if not candidates or epochs < 2:
            raise ValueError("a pipelined trial needs ≥ 1 candidate and ≥ 2 epochs")
        self.candidates = candidates[: epochs - 1]
        self.objective = objective
        self.continuation = continuation
        self.may_recognize = may_recognize  # a hit after the profiling epoch may settle it
        self.switch = switch  # "always" | "when-it-pays"
        # Set when a recognised recurring job is handed its best known setting after the
        # profiling epoch: the remaining candidates are then not probed. `recognized_values`
        # are that setting's measured epoch_s / energy_j, for the when-it-pays test.
        self.recognized: SystemSetting | None = None
        self.recognized_values: dict[str, float] = {}

    def phase(self, history: list[SegmentRecord]) -> Phase:
        if epochs_done(history) >= self.epochs:
            return Phase.DONE
        probed = [s for s in history if s.role is Role.PROBE]
        if not probed:
            return Phase.PROFILING
        if self.recognized is not None:
            return Phase.SETTLED
        trained = any(s.role is Role.TRAIN for s in history)
        if len(probed) < len(self.candidates) and not trained:
            return Phase.PROBING
        return Phase.SETTLED

    def next_segment(self, history: list[SegmentRecord]) -> PlannedSegment | None:
        phase = self.phase(history)
        if phase is Phase.DONE:
            return None
        if phase in (Phase.PROFILING, Phase.PROBING):
            tried = sum(1 for s in history if s.role is Role.PROBE)
            remaining = self.epochs - epochs_done(history)
            last = tried == len(self.candidates) - 1
            if (
                self.continuation
                and remaining > 1
                and (last or (tried == 0 and self.may_recognize))
            ):
                return PlannedSegment(self.candidates[tried], remaining, Role.PROBE, decide_after=1)
            return PlannedSegment(self.candidates[tried], 1, Role.PROBE)
        best = self.recognized or select_best(self.probes(history), self.objective).setting
        return PlannedSegment(best, self.epochs - epochs_done(history), Role.TRAIN)

    def continue_after(self, history: list[SegmentRecord]) -> tuple[bool, str]:
        """At a pause (the paused probe is the last of `history`): go on at its setting?"""
        current = history[-1].setting
        if self.recognized is not None:
            target, why = self.recognized, "recognised"
        elif self.phase(history) is Phase.SETTLED:
            target, why = select_best(self.probes(history), self.objective).setting, "best probed"
        else:
            return False, "more settings to probe"
        if target == current:
            return True, f"{current} is the {why} setting: training goes on without a restart"
        if self.switch == "when-it-pays":
            kept = self._keep(history, target)
            if kept is not None:
                return True, f"the {why} setting is {target}, but {kept}"
        return False, f"the {why} setting is {target}: restarting there"

    def _keep(self, history: list[SegmentRecord], target: SystemSetting) -> str | None:
        """Why staying at the paused setting is cheaper than a restart at `target`, or None."""
        paused = history[-1]
        if not paused.ok or not paused.epochs:
            return None
        epoch = paused.epochs[0]
        if self.recognized is not None:
            values = self.recognized_values
            target_s, target_j = values.get("epoch_s"), values.get("energy_j")
        else:
            found = [p for p in self.probes(history) if p.setting == target and p.ok]
            if not found:
                return None
            target_s, target_j = found[0].epoch_s, found[0].energy_j
        if target_s is None:
            return None
        remaining = self.epochs - epochs_done(history)
        startup_s = paused.startup_s
        startup_j = max(0.0, paused.energy.joules - sum(e.energy.joules for e in paused.epochs))
        stay = ProbeResult(
            paused.setting,
            remaining * epoch.duration_s,
            remaining * epoch.energy.joules,
            epoch.energy.source,
        )
        move = ProbeResult(
            target,
            startup_s + remaining * target_s,
            startup_j + remaining * target_j if target_j is not None else None,
            epoch.energy.source,
        )
        try:
            if select_best([stay, move], self.objective) is move:
                return None
        except ValueError:  # e.g. no energy measurement for an energy objective
            return None
        return (
            f"{remaining} epoch(s) there would not repay a start-up ({startup_s:.0f} s): "
            f"staying at {paused.setting} without a restart"
        )

    def probes(self, history: list[SegmentRecord]) -> list[ProbeResult]:
        if self.recognized is not None:
            return []  # the profiling epoch was training at the default, not a comparison
        results = []
        for seg in history:
            if seg.role is not Role.PROBE:
                continue
            epoch = seg.epochs[0] if seg.ok and seg.epochs else None
            results.append(
                ProbeResult(
                    setting=seg.setting,
                    epoch_s=epoch.duration_s if epoch else None,
                    energy_j=epoch.energy.joules if epoch else None,
                    energy_source=epoch.energy.source if epoch else "none",
                    error=seg.error,
                )
            )
        return results

    def chosen(self, history: list[SegmentRecord]) -> tuple[SystemSetting | None, SettingSource]:
        """The setting the trial trains (or will train) at: the recognised or best probed one,
        or the paused one when switching would not have paid."""
        trained = [s for s in history if s.role is Role.TRAIN]
        if self.recognized is not None:
            return (trained[-1].setting if trained else self.recognized), SettingSource.RECOGNIZED
        if trained:
            return trained[-1].setting, SettingSource.PROBED
        if self.phase(history) is Phase.SETTLED:
            return select_best(self.probes(history), self.objective).setting, SettingSource.PROBED
        return None, SettingSource.PROBED

    def can_continue_after(self, failed: SegmentRecord, history: list[SegmentRecord]) -> bool:
        if self.recognized is not None:
            return False
        default_ok = any(s.ok and s.role is Role.PROBE for s in history)
        return failed.role is Role.PROBE and failed.setting != self.candidates[0] and default_ok
