"""One segment's events turned into stints: the tuner's side of the app contract.

A segment is one job. With a decision file (`takes_decisions`) the app pauses right after
its start, where the segment's setting is put in force (launched wider, then placed), and
then wherever the tuner's last decision said; at each later pause the tuner decides to stop
there, go on, or go on at another setting reachable live. The epochs between two pauses at
one setting are a `Stint`; the result lists them. Every epoch and window is checked against
what was sent: the hyperparameters, and the system setting put in force.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from pipetune import contract
from pipetune.backends.events import echo_mismatches
from pipetune.backends.startup import StartupPhases
from pipetune.contract import EventError
from pipetune.errors import AppContractError
from pipetune.placement import PlacementError
from pipetune.records import (
    Decision,
    Energy,
    EpochReport,
    Pause,
    SegmentRequest,
    SegmentResult,
    Stint,
    SystemSetting,
    WindowReport,
)

if TYPE_CHECKING:
    from pipetune.backends.base import DecideCallback, EpochCallback, Job
    from pipetune.backends.meter import SegmentMeter


def takes_decisions(request: SegmentRequest) -> bool:
    """Whether the app is given a decision file: it may pause, or starts wider than its setting."""
    return 0 < request.decide_after < request.epochs or request.launch is not None


class SegmentRun:
    """One segment's events, turned into stints: the bookkeeping between pauses."""

    def __init__(
        self,
        request: SegmentRequest,
        job: Job,
        meter: SegmentMeter,
        on_epoch: EpochCallback,
        decide: DecideCallback | None,
        launched_at: float,
    ) -> None:
        self.request = request
        self.job = job
        self.meter = meter
        self.on_epoch = on_epoch
        self.decide = decide
        self.phases = StartupPhases(launched_at)
        self.app_id = ""
        self.setting = request.setting
        self.role = request.role
        self.stints: list[Stint] = []
        self.epochs: list[EpochReport] = []  # of the stint in progress
        self.window: WindowReport | None = None  # the window just reported, before its pause
        self.switch_s = 0.0  # the live switch before the stint in progress
        self.stint_error: str | None = None
        self.expected: dict[str, Any] = {}  # what the app must echo as in force
        self.windows = False  # the app can pause inside an epoch (its `start` says so)
        self.warmup = 0  # of the window asked for: its first iterations not measured
        self.placed = False  # the pause right after start is over
        self.stopped = False
        self.ended = False
        self.idle = False  # after `end`: the process waits for its next segment

    # ------------------------------------------------------------------ events

    def handle(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == contract.START:
            self._start(event)
        elif kind == contract.PAUSE:
            self._pause(int(event.get("epoch", -1)), int(event.get("iteration") or 0))
        elif kind == contract.EPOCH:
            self._epoch(event)
        elif kind == contract.WINDOW:
            self.window = self.meter.window(event, self.warmup)
            self._raise_mismatches(self._system_mismatches(self.window.system))
        elif kind == contract.REFUSED:
            self.stint_error = f"the app refused {self.setting}: {event.get('reason')}"
        elif kind == contract.END:
            self.ended = True
            self.phases.ended(event.get("save_s"))
        elif kind == contract.IDLE:
            if not self.ended:
                raise EventError("the app went idle before the end of its segment")
            self.idle = True

    def _start(self, event: dict[str, Any]) -> None:
        self.app_id = self.job.app_id = str(event.get("app_id", ""))
        self.windows = event.get("windows") is True
        self.phases.started(event.get("startup"))
        self.meter.started()
        if not takes_decisions(self.request):
            self._begin_profile()

    def _epoch(self, event: dict[str, Any]) -> None:
        report = self.meter.epoch(event)
        sent = self.request.hyperparameters
        wrong = echo_mismatches(sent, self.job.flags, report.echoed)
        self._raise_mismatches(wrong + self._system_mismatches(report.system))
        self.epochs.append(report)
        self.on_epoch(report, self.setting, self.role)

    def _pause(self, epoch: int, iteration: int) -> None:
        paused_at = time.monotonic()
        if not self.placed:  # the pause right after start: put the segment's setting in force
            self._first_pause(epoch, iteration)
            return
        if self.stopped:
            raise EventError(f"the app paused after epoch {epoch}, after it was told to stop")
        wall, energy = self.meter.cut()
        profile = self.meter.profile if not self.stints else None
        pause = Pause(
            self.setting, self.role, tuple(self.epochs), wall, energy, profile, self.window
        )
        if self.decide is None:  # nobody to ask: go on as launched
            decision = Decision(self.setting, self.role, 0)
        else:
            decision = self.decide(pause)
        self._close_stint(wall, energy)
        target = decision.setting
        if (
            target is not None
            and target != self.setting
            and not self._put_in_force(target, initial=False)
        ):
            self.stints.append(
                Stint(target, decision.role, (), 0.0, Energy.zero(), error=self.stint_error)
            )
            self.stint_error = None
            decision = Decision(None, why="the setting could not be put in force")
        if decision.setting is not None:
            self.setting, self.role = decision.setting, decision.role
        self._answer(epoch, iteration, decision)
        self.switch_s = self.meter.switch_s(paused_at)

    def _first_pause(self, epoch: int, iteration: int) -> None:
        self.placed = True
        decision = Decision(self.setting, self.role, self.request.decide_after)
        if not self._put_in_force(self.setting, initial=True):
            decision = Decision(None, why=self.stint_error or "")
        # the profiler is attached before the app may go on: attaching takes a while, and a
        # short first epoch (torch's last a fraction of a second) would be over before it
        self._begin_profile()
        self._answer(epoch, iteration, decision)

    def _put_in_force(self, setting: SystemSetting, initial: bool) -> bool:
        """The OS part (CPUs), before the app is told its part; False if it cannot be."""
        try:
            self.job.place(setting, initial)
        except (PlacementError, OSError) as exc:
            self.stint_error = f"could not place the job at {setting}: {exc}"
            return False
        self.expected = self.job.expected_echo(setting)
        return True

    def _answer(self, epoch: int, iteration: int, decision: Decision) -> None:
        live = self.job.app_values(decision.setting) if decision.setting else {}
        pause_after, iterations = decision.pause_after, decision.iterations
        if iterations and not self.windows:  # the app pauses only between epochs: one epoch
            pause_after, iterations = 1, 0
        self.warmup = decision.warmup if iterations else 0
        answer = contract.Decision(epoch, decision.go_on, live, pause_after, iteration, iterations)
        self.job.answer(answer)
        self.stopped = not decision.go_on

    def _begin_profile(self) -> None:
        if self.request.profile:
            self.meter.begin_profile()

    # ------------------------------------------------------------------ stints

    def _close_stint(self, wall_s: float, energy: Energy) -> None:
        self.stints.append(
            Stint(
                self.setting,
                self.role,
                tuple(self.epochs),
                wall_s,
                energy,
                self.meter.profile if not self.stints else None,
                self.switch_s,
                self.stint_error,
                self.window,
            )
        )
        self.epochs = []
        self.window = None
        self.switch_s = 0.0

    def close(self) -> None:
        """The job's events are over (or it failed): stop measuring."""
        self.meter.close()

    def result(self, tail: str) -> SegmentResult:
        wall, energy = self.meter.cut()
        if self.epochs or not self.stints or self.stint_error:
            self._close_stint(wall, energy)
        else:  # stopped at a pause: the save and teardown belong to the last stint
            last = self.stints[-1]
            self.stints[-1] = dataclasses.replace(
                last, wall_s=last.wall_s + wall, energy=last.energy + energy
            )
        asked = self.request.epochs
        got = sum(len(s.epochs) for s in self.stints)
        if got != asked and not self.stopped and not self.stint_error:
            raise AppContractError(f"asked for {asked} epoch(s), the app reported {got}", tail)
        phases = self.phases.finished() if self.phases.seconds else {}
        return SegmentResult(
            tuple(self.stints),
            self.app_id,
            self.job.reused,
            phases,
            self.meter.power(),
            self.meter.notes(),
        )

    # ------------------------------------------------------------------ checks

    def _system_mismatches(self, system: dict[str, Any]) -> list[str]:
        """What the app says is in force (an epoch's or a window's `system`) against what was
        put in force."""
        if not self.expected:
            return []
        if not system:
            return ["the app did not echo the system setting in force (`system`)"]
        return [
            f"system {k}: in force should be {v!r}, app echoed {system.get(k)!r}"
            for k, v in self.expected.items()
            if system.get(k) != v
        ]

    @staticmethod
    def _raise_mismatches(wrong: list[str]) -> None:
        if wrong:
            raise EventError("the app did not receive what was sent: " + "; ".join(wrong))
