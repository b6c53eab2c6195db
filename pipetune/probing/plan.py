"""The per-trial plan: an explicit state machine from the trial's history to its next step.

A plan is a pure function of the segments already run (and of a recognition answer, which is
journaled), so a resumed trial continues exactly where the journal says it stopped. Pipelined
trials go

    PROFILING (epoch 1 at the default) → PROBING (one epoch per candidate) → SETTLED → DONE

and fixed trials (v1, v2, oracle) run every epoch at one setting. With window probes
(`probing.window` "iterations", probing/window_plan.py) a pipelined trial goes

    PROFILING (a warm-up epoch at the launch setting, Role.WARMUP) → PROBING (a window of
    iterations per live candidate, inside the next epoch) → SETTLED → DONE

In place: a process is launched for all the trial's remaining epochs and pauses after each
probe epoch. At a pause (`at_pause`) the plan's next step is taken in the same process when it
differs from the running setting only in live parameters (cores): the backend moves the job
to the new CPUs and the app changes its core count, with no restart. A step that changes a
restart parameter (memory) stops the process, saved, and the next one starts there.

Candidates are probed live ones first; one that needs a restart is probed, and a switch that
needs one is made, under the rules in probing/restart_policy.py. The decision's reason says
why it was or was not probed.

Warm-up (probing/measure.py): a candidate that beats the default by less than `warmup_margin`
later in the same process makes the plan measure the default again before choosing.

Recognition: a hit journaled after the profiling epoch (`TrialHistory.recognized`) settles
the trial on the recurring job's best known setting; the remaining candidates are not probed.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipetune.config_probing import ProbeWindow, ProbingConfig, SwitchRule
from pipetune.probing import restart_policy, window_plan
from pipetune.probing.history import TrialHistory, epochs_done
from pipetune.probing.measure import latest, needs_recheck, probe_result
from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import Decision, Role, SegmentRecord, SettingSource, SystemSetting


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
    decide_after: int = 0  # pause after this many epochs and ask `at_pause`
    launch: SystemSetting | None = None  # launch wider than `setting` (live parameters)
    why: str = ""


def _probed(segments: list[SegmentRecord]) -> set[SystemSetting]:
    return {s.setting for s in segments if s.role is Role.PROBE}


class TrialPlan(ABC):
    """Decides each next segment of one trial from what has run so far."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    @abstractmethod
    def next_segment(self, history: TrialHistory) -> PlannedSegment | None:
        """The segment to run next, or None when the trial has all its epochs."""

    @abstractmethod
    def chosen(self, history: TrialHistory) -> tuple[SystemSetting | None, SettingSource]:
        """The setting the trial runs (or will run) its remaining epochs at, and why."""

    def at_pause(self, history: TrialHistory, running: SystemSetting) -> Decision:
        """At a pause of a running segment (its epochs so far are the last of `history`):
        go on in the same process, at which setting, or stop there."""
        planned = self.next_segment(history)
        if planned is None:
            return Decision(None, why="the trial has all its epochs")
        return Decision(planned.setting, planned.role, planned.decide_after, planned.why)

    def probes(self, history: TrialHistory) -> list[ProbeResult]:
        """Every probe epoch, in order."""
        return []

    def probes_for_choice(self, history: TrialHistory) -> list[ProbeResult]:
        """One result per probed setting, as the choice compares them."""
        return []

    def not_probed(self, history: TrialHistory) -> list[dict[str, str]]:
        """Candidates left out, each with why (summary.json)."""
        return []

    def can_continue_after(self, failed: SegmentRecord, history: TrialHistory) -> bool:
        """Whether the trial survives this failed segment (only a non-default probe can fail)."""
        return False


class FixedPlan(TrialPlan):
    """Every epoch at one setting: the default (v1), the searched one (v2), the oracle's."""

    def __init__(self, epochs: int, setting: SystemSetting, source: SettingSource) -> None:
        super().__init__(epochs)
        self.setting = setting
        self.source = source

    def next_segment(self, history: TrialHistory) -> PlannedSegment | None:
        remaining = self.epochs - epochs_done(history.segments)
        return PlannedSegment(self.setting, remaining, Role.TRAIN) if remaining > 0 else None

    def chosen(self, history: TrialHistory) -> tuple[SystemSetting | None, SettingSource]:
        return self.setting, self.source


class PipelinedPlan(TrialPlan):
    """PipeTune: profile and probe one epoch per candidate, then train at the best."""

    def __init__(
        self,
        epochs: int,
        candidates: list[SystemSetting],
        probing: ProbingConfig,
        *,
        live: frozenset[str] = frozenset(),
        widest: SystemSetting | None = None,
    ) -> None:
        super().__init__(epochs)
        if not candidates or epochs < 2:
            raise ValueError("a pipelined trial needs ≥ 1 candidate and ≥ 2 epochs")
        self.default = candidates[0]
        self.probing = probing
        self.objective: Objective = probing.objective
        self.live = live if probing.live and probing.continuation else frozenset()
        # live candidates first (same process), then those that need a restart
        rest = sorted(candidates[1 : epochs - 1], key=lambda c: not self.reachable(self.default, c))
        self.candidates = [self.default, *rest]
        self.widest = widest  # the launch value of each live parameter
        # Window probes (probing/window_plan.py): the live candidates, the default first,
        # each over a window of iterations after a warm-up epoch at the launch setting.
        live_ones = [c for c in self.candidates if self.reachable(self.default, c)]
        others = [c for c in dict.fromkeys(live_ones) if c != self.default]
        self.windows = probing.window == ProbeWindow.ITERATIONS and bool(others)
        self.windowed = [self.default, *others] if self.windows else []
        # measured in this order: the warm-up's setting first (no switch), then the others
        warm = self._launch(self.default) or self.default
        self.window_order = sorted(self.windowed, key=lambda c: c != warm)

    # ------------------------------------------------------------------ state machine

    def reachable(self, running: SystemSetting, target: SystemSetting) -> bool:
        """Whether `target` can be applied in a process running at `running` (live only)."""
        return running.differing(target) <= self.live

    def phase(self, history: TrialHistory) -> Phase:
        segments = history.segments
        if epochs_done(segments) >= self.epochs:
            return Phase.DONE
        if self.windowing(history):
            return self._window_state(history)[0]
        if not any(s.role is Role.PROBE for s in segments):
            return Phase.PROFILING
        if history.recognized is not None or any(s.role is Role.TRAIN for s in segments):
            return Phase.SETTLED
        if self._next_probe(history) is not None:
            return Phase.PROBING
        return Phase.SETTLED

    def next_segment(self, history: TrialHistory) -> PlannedSegment | None:
        phase = self.phase(history)
        remaining = self.epochs - epochs_done(history.segments)
        if phase is Phase.DONE:
            return None
        if self.windowing(history) and phase is not Phase.SETTLED and remaining >= 2:
            # a new process: its first epoch warms up at the launch setting, then windows
            launch = self._launch(self.default) or self.default
            why = f"warm-up epoch at the launch setting {launch}, then window probes"
            return PlannedSegment(launch, remaining, Role.WARMUP, 1, why=why)
        if phase is Phase.PROFILING:
            return self._probe(self.default, remaining, "profiling at the default")
        step = self._next_probe(history) if phase is Phase.PROBING else None
        if step is not None:
            return self._probe(step[0], remaining, step[1])
        best, why = self._target(history)
        return PlannedSegment(best, remaining, Role.TRAIN, launch=self._launch(best), why=why)

    def at_pause(self, history: TrialHistory, running: SystemSetting) -> Decision:
        step = self._window_state(history)[1] if self.windowing(history) else None
        if step is not None:
            return Decision(step.setting, Role.PROBE, 0, step.why, step.iterations, step.warmup)
        planned = self.next_segment(history)
        if planned is None:
            return Decision(None, why="the trial has all its epochs")
        if planned.setting == running:
            pause = planned.decide_after if planned.role is Role.PROBE else 0
            return Decision(running, planned.role, pause, planned.why)
        if self.reachable(running, planned.setting):
            pause = planned.decide_after if planned.role is Role.PROBE else 0
            return Decision(planned.setting, planned.role, pause, f"{planned.why} (live)")
        needs = ", ".join(sorted(running.differing(planned.setting) - self.live))
        if planned.role is Role.TRAIN and self.probing.switch == SwitchRule.WHEN_IT_PAYS:
            kept = restart_policy.keep_reason(
                history.segments,
                planned.setting,
                self.probes_for_choice(history),
                history.recognized,
                self.epochs,
                self.objective,
            )
            if kept is not None:
                return Decision(running, Role.TRAIN, 0, f"{planned.why}, but {kept}")
        return Decision(None, why=f"{planned.why}: restarting there ({needs} needs a restart)")

    def windowing(self, history: TrialHistory) -> bool:
        """Window probes, unless the app answered a window with a whole epoch: it cannot pause
        inside one (its `start` did not say it can), and the plan goes on by epochs."""
        fallback = any(
            s.role is Role.PROBE and s.epochs and s.window is None for s in history.segments
        )
        return self.windows and not fallback

    def _window_state(self, history: TrialHistory) -> tuple[Phase, window_plan.WindowStep | None]:
        """Where a window-probed trial stands (DONE aside), and the window to run next."""
        segments = history.segments
        if not segments:
            return Phase.PROFILING, None
        if history.recognized is not None or any(s.role is Role.TRAIN for s in segments):
            return Phase.SETTLED, None
        if not any(s.role is Role.WARMUP and s.ok and s.epochs for s in segments):
            return Phase.PROFILING, None
        step = window_plan.next_step(segments, self.window_order, self.probing, self.epochs)
        return (Phase.PROBING, step) if step is not None else (Phase.SETTLED, None)

    def _probe(self, setting: SystemSetting, remaining: int, why: str) -> PlannedSegment:
        if self.probing.continuation and remaining > 1:
            return PlannedSegment(
                setting, remaining, Role.PROBE, 1, launch=self._launch(setting), why=why
            )
        return PlannedSegment(setting, 1, Role.PROBE, why=why)

    def _launch(self, setting: SystemSetting) -> SystemSetting | None:
        """`setting` with each live parameter at its widest candidate value."""
        if not self.live or self.widest is None:
            return None
        wide = {**setting.as_dict(), **{k: v for k, v in self.widest.items if k in self.live}}
        launch = SystemSetting.of(wide)
        return None if launch == setting else launch

    def _next_probe(self, history: TrialHistory) -> tuple[SystemSetting, str] | None:
        """The next setting to probe and why, or None when probing is over."""
        segments = history.segments
        remaining = self.epochs - epochs_done(segments)
        if remaining < 2:
            return None  # the last epoch trains at the best setting
        tried = _probed(segments)
        for candidate in self.candidates:
            if candidate in tried:
                continue
            if self._restart_skip(segments, candidate, remaining) is None:
                return candidate, f"probing {candidate}"
        margin = self.probing.warmup_margin
        if needs_recheck(segments, self.default, self.objective, margin):
            return self.default, f"measuring the default {self.default} again, warm"
        return None

    def _restart_skip(
        self, segments: list[SegmentRecord], candidate: SystemSetting, remaining: int
    ) -> str | None:
        """Why a candidate that needs a restart is not probed, or None to probe it."""
        if not self.live or self.probing.continuation is False:
            return None  # every probe is its own process anyway
        running = segments[-1].setting if segments else self.default
        if self.reachable(running, candidate):
            return None
        needs = running.differing(candidate) - self.live
        return restart_policy.skip_reason(segments, candidate, remaining, needs, self.probing)

    def _target(self, history: TrialHistory) -> tuple[SystemSetting, str]:
        """The setting the trial trains at, and why."""
        if history.recognized is not None:
            recognized = history.recognized.setting
            return recognized, f"{recognized} is the recognised setting"
        trained = [s for s in history.segments if s.role is Role.TRAIN]
        if trained:
            return trained[-1].setting, f"training on at {trained[-1].setting}"
        if self.windowing(history):
            confidence = self.probing.window_confidence
            segments = history.segments
            return window_plan.choice(segments, self.windowed, self.objective, confidence)
        best = select_best(self.probes_for_choice(history), self.objective)
        return best.setting, f"{best.setting} is the best probed setting"

    # ------------------------------------------------------------------ measurements

    def probes_for_choice(self, history: TrialHistory) -> list[ProbeResult]:
        """One result per probed setting: its latest measurement (warm for a re-measured
        default)."""
        if history.recognized is not None:
            return []
        if self.windowing(history):
            return window_plan.results(history.segments, self.windowed)
        return latest(history.segments)

    def probes(self, history: TrialHistory) -> list[ProbeResult]:
        """Every probe epoch, in order (a re-measured default appears twice)."""
        if history.recognized is not None:
            return []  # the profiling epoch was training at the default, not a comparison
        if self.windowing(history):
            return window_plan.run_results(history.segments)
        return [probe_result(s) for s in history.segments if s.role is Role.PROBE]

    def not_probed(self, history: TrialHistory) -> list[dict[str, str]]:
        settled = self.phase(history) in (Phase.SETTLED, Phase.DONE)
        if history.recognized is not None or not settled:
            return []
        segments = history.segments
        tried = _probed(segments)
        if self.windowing(history):
            why = "it needs a restart; window probes are for live parameters only"
            return [
                {"setting": c.label(), "why": why if c not in self.windowed else "not reached"}
                for c in self.candidates
                if c not in tried
            ]
        out = []
        for candidate in self.candidates:
            if candidate in tried:
                continue
            # why, as it stood when the plan first passed it over: after the probe that left
            # it next in line (the candidates before it probed), or the last probe
            ahead = set(self.candidates[: self.candidates.index(candidate)])
            cuts = [i + 1 for i, s in enumerate(segments) if s.role is Role.PROBE]
            cut = next((c for c in cuts if ahead <= _probed(segments[:c])), cuts[-1])
            before = segments[:cut]
            remaining = self.epochs - epochs_done(before)
            why = self._restart_skip(before, candidate, remaining) or "no epochs left to probe it"
            out.append({"setting": candidate.label(), "why": why})
        return out

    def chosen(self, history: TrialHistory) -> tuple[SystemSetting | None, SettingSource]:
        """The setting the trial trains (or will train) at: the recognised or best probed one,
        or the paused one when switching would not have paid."""
        trained = [s for s in history.segments if s.role is Role.TRAIN]
        if history.recognized is not None:
            recognized = history.recognized.setting
            return (trained[-1].setting if trained else recognized), SettingSource.RECOGNIZED
        if trained:
            return trained[-1].setting, SettingSource.PROBED
        if self.phase(history) is Phase.SETTLED:
            return self._target(history)[0], SettingSource.PROBED
        return None, SettingSource.PROBED

    def can_continue_after(self, failed: SegmentRecord, history: TrialHistory) -> bool:
        if history.recognized is not None:
            return False
        default_ok = any(s.ok and s.role is Role.PROBE for s in history.segments)
        return failed.role is Role.PROBE and failed.setting != self.default and default_ok
