"""A backend that answers segments from a trace instead of Spark.

Semantics (docs/TRACE_FORMAT.md, "Replay"):
  * the trial's hyperparameters (canonical JSON) and the segment's setting select a group;
    the trial's progress is the number of epochs this backend has already replayed for it, so a
    segment continues at epoch e = progress + 1 and returns the group's rows e..e+k-1;
  * time, energy and ACCURACY all come from those rows: accuracy depends on the epochs trained,
    approximated by the same epoch index recorded under the segment's setting; but the first
    epoch of a segment that does not start at epoch 1 costs what the group's epoch 1 cost,
    because every segment is a new process whose first epoch pays the JIT warm-up (recorded
    epochs 2.. ran warm, 1.3-2.5x faster here);
  * a process is launched at the request's launch setting (its start-up is that group's) and
    runs its first stint at the request's setting. At a pause `decide` returns a `Decision`:
    stop there, go on, or go on at another setting (a live switch): the process stays warm,
    so later epochs cost what the trace recorded for their epoch number under the new
    setting, plus the new group's measured `switch_s` (its energy at epoch 1's rate);
  * wall = start-up + Σ(duration + eval) (+ live switches); start-up energy = start-up × the
    energy rate (energy / wall) of the group's epoch 1, labelled with that epoch's source;
  * a decision that asks for a window of k iterations (a window probe) runs them in the next
    epoch at the decision's setting: each iteration costs that epoch's recorded steady time
    (its duration without one) over the epoch's iterations, ceil(samples / batch size) with
    the batch size from a hyperparameter named like "batch" (100 without one), times its own
    lognormal(0, noise) factor; energy at that epoch's mean power. When the epoch ends, it
    costs the windows plus the rest of it, as a share of the epoch under the setting it ends at;
  * optional noise multiplies each epoch's duration, eval and energy by one lognormal(0, noise)
    factor (power unchanged), and a start-up (and its energy) by another. Each factor comes
    from a numpy Generator seeded by (seed, workload, trial, setting, epoch, kind), so a replay
    does not depend on the order in which trials are interleaved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import numpy as np

from pipetune.backends.base import Backend, DecideCallback, EpochCallback
from pipetune.errors import SegmentFailed
from pipetune.records import (
    Decision,
    Energy,
    EpochReport,
    Pause,
    Role,
    SegmentRequest,
    SegmentResult,
    Stint,
    SystemSetting,
    WindowReport,
)
from pipetune.replay.trace import Trace, TraceError, TraceRow, canonical_config
from pipetune.telemetry.profile import JobProfile

APP_ID = "replay"


class ReplayBackend(Backend):
    """Replays one workload of a trace; keeps each trial's epochs done in memory."""

    def __init__(self, trace: Trace, workload: str, noise: float = 0.0, seed: int = 0) -> None:
        if workload not in trace.workloads():
            known = ", ".join(trace.workloads()[:10]) or "none"
            raise TraceError(f"workload {workload!r} is not in the trace (workloads: {known})")
        if not (noise >= 0.0 and np.isfinite(noise)):
            raise ValueError(f"noise: expected a finite number >= 0, found {noise!r}")
        self.trace = trace
        self.workload = workload
        self.noise = float(noise)
        self.seed = int(seed)
        self._done: dict[str, int] = {}

    def progress(self, trial_id: str) -> int:
        """Epochs replayed so far for `trial_id` (0 for a trial not seen yet)."""
        return self._done.get(trial_id, 0)

    def profile(self) -> JobProfile | None:
        """The workload's profiling-epoch profile from the trace, None if it has none."""
        return self.trace.profile(self.workload)

    def run_segment(
        self,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None = None,
    ) -> SegmentResult:
        if request.epochs < 1:
            raise SegmentFailed(f"replay: asked for {request.epochs} epoch(s), expected >= 1")
        config = canonical_config(request.hyperparameters)
        first = self.progress(request.trial_id) + 1
        last = first + request.epochs - 1
        extra: dict[str, Any] = {}
        measured: dict[str, Any] | None = None  # the profile, which goes with the first stint
        if request.profile:
            profile = self.profile()
            if profile is None:
                extra["profile_error"] = f"the trace has no profile for {self.workload!r}"
            else:
                measured = profile.to_dict()
        run = _Replayed(self, request, config, first)
        pause_after = request.decide_after if 0 < request.decide_after < request.epochs else 0
        next_pause = first - 1 + pause_after if pause_after else 0
        for epoch in range(first, last + 1):
            report = run.epoch(epoch)
            on_epoch(report, run.setting, run.role)
            if epoch != next_pause or epoch == last:
                continue
            decision = self._decide(run, measured, decide)
            while decision.go_on and decision.iterations:  # window probes inside the next epoch
                run.run_window(epoch + 1, decision.iterations, decision.warmup)
                decision = self._decide(run, measured, decide)
            if not decision.go_on:
                break
            next_pause = epoch + decision.pause_after if decision.pause_after else 0
        self._done[request.trial_id] = first + run.epochs_run - 1
        return SegmentResult(run.finish(measured), APP_ID, extra)

    @staticmethod
    def _decide(
        run: _Replayed, measured: dict[str, Any] | None, decide: DecideCallback | None
    ) -> Decision:
        pause = run.pause(measured)
        decision = decide(pause) if decide is not None else Decision(run.setting, run.role)
        run.go_on(decision, measured)
        return decision

    def noise_factor(
        self, trial_id: str, setting: str, epoch: int, startup: bool = True, kind: str = ""
    ) -> float:
        """A lognormal(0, noise) factor for one epoch (or one start-up) of a trial at a setting;
        1 without noise. Seeded by (seed, workload, trial, setting, epoch, kind), so a replay
        does not depend on the order in which trials are interleaved."""
        if self.noise == 0.0:
            return 1.0
        kind = kind or ("startup" if startup else "epoch")
        key = f"{self.workload}\0{trial_id}\0{setting}\0{epoch}\0{kind}".encode()
        digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        return float(np.random.default_rng([self.seed, digest]).lognormal(0.0, self.noise))


def _report(row: TraceRow, factor: float, hyperparameters: dict[str, Any]) -> EpochReport:
    return EpochReport(
        epoch=row.epoch,
        duration_s=row.duration_s * factor,
        eval_s=row.eval_s * factor,
        loss=row.loss,
        accuracy=row.accuracy,
        samples=row.samples,
        echoed=dict(hyperparameters),
        energy=Energy(row.energy_j * factor, row.energy_source),
        steady_s=row.steady_s * factor if row.steady_s is not None else None,
        iterations=_epoch_iterations(row, hyperparameters),
    )


def _epoch_iterations(row: TraceRow, hyperparameters: dict[str, Any]) -> int:
    """Iterations in an epoch of this row: samples over the batch size (100 without one)."""
    batch = next(
        (v for k, v in hyperparameters.items() if "batch" in k.lower() and isinstance(v, int)),
        0,
    )
    if batch > 0 and row.samples > 0:
        return max(1, math.ceil(row.samples / batch))
    return 100


def _startup_energy(epoch1: TraceRow, startup_s: float) -> Energy:
    rate = epoch1.energy_j / epoch1.wall_s if epoch1.wall_s > 0 else 0.0
    return Energy(rate * startup_s, epoch1.energy_source)


class _Replayed:
    """One replayed process: its stints so far and what the trace says each epoch cost."""

    def __init__(self, backend: ReplayBackend, request: SegmentRequest, config: str, first: int):
        self.backend = backend
        self.request = request
        self.config = config
        self.first = first
        self.setting: SystemSetting = request.setting
        self.role: Role = request.role
        self.stints: list[Stint] = []
        self.reports: list[EpochReport] = []
        self.epochs_run = 0
        rows = self._rows(request.launched_as)
        factor = backend.noise_factor(request.trial_id, request.launched_as.label(), first)
        self.overhead_s = rows[0].startup_s * factor  # the start-up: charged to stint 1
        self.overhead_j = _startup_energy(rows[0], self.overhead_s)
        self.switch_s = 0.0
        self.window: WindowReport | None = None  # the stint's window, when it is one
        # windows run so far inside the epoch in progress: their share of it, time, energy
        self.partial = (0.0, 0.0, 0.0)
        # of this stint's epochs, what their windows' stints already charged
        self.prepaid = Energy.zero()
        self.prepaid_s = 0.0

    def _rows(self, setting: SystemSetting) -> list[TraceRow]:
        label = setting.label()
        rows = self.backend.trace.epochs(self.backend.workload, self.config, label)
        if not rows:
            recorded = ", ".join(self.backend.trace.settings(self.backend.workload, self.config))
            raise SegmentFailed(
                f"replay: the trace has no epochs of workload {self.backend.workload!r}, config "
                f"{self.config} at setting {label!r} (settings recorded for this config: "
                f"{recorded or 'none'})"
            )
        return rows

    def epoch(self, epoch: int) -> EpochReport:
        rows = self._rows(self.setting)
        if epoch > len(rows):
            raise SegmentFailed(
                f"replay: the segment needs epoch {epoch} of workload {self.backend.workload!r}, "
                f"config {self.config} at setting {self.setting.label()!r}; the trace has "
                f"epochs 1..{len(rows)}"
            )
        label = self.setting.label()
        factor = self.backend.noise_factor(self.request.trial_id, label, epoch, startup=False)
        report = _report(rows[epoch - 1], factor, self.request.hyperparameters)
        if self.epochs_run == 0 and epoch > 1:
            # A new process pays the JIT warm-up on its first epoch, whatever the trial's
            # epoch number: its cost is the group's epoch 1 (recorded in a fresh process),
            # its accuracy the epoch it really is. A live switch keeps the process warm.
            cold = _report(rows[0], factor, self.request.hyperparameters)
            report = dataclasses.replace(
                report,
                duration_s=cold.duration_s,
                eval_s=cold.eval_s,
                energy=cold.energy,
                steady_s=cold.steady_s,
            )
        share, seconds, joules = self.partial
        if share > 0:  # windows ran inside this epoch: they, then the rest at this setting
            rest = max(0.0, 1.0 - share)
            report = dataclasses.replace(
                report,
                duration_s=seconds + rest * report.duration_s,
                energy=Energy(joules + rest * report.energy.joules, report.energy.source),
            )
            self.partial = (0.0, 0.0, 0.0)
            self.prepaid_s += seconds
            self.prepaid = self.prepaid + Energy(joules, report.energy.source)
        self.reports.append(report)
        self.epochs_run += 1
        return report

    def run_window(self, epoch: int, iterations: int, warmup: int) -> None:
        """A window probe of `iterations` at the current setting, inside `epoch`."""
        rows = self._rows(self.setting)
        row = rows[min(epoch, len(rows)) - 1]
        per_epoch = _epoch_iterations(row, self.request.hyperparameters)
        pace = (row.steady_s or row.duration_s) / per_epoch
        label, trial = self.setting.label(), self.request.trial_id
        times = tuple(
            pace * self.backend.noise_factor(trial, label, epoch, kind=f"iteration {i}")
            for i in range(iterations)
        )
        seconds = sum(times)
        power = row.energy_j / row.duration_s if row.duration_s > 0 else 0.0
        energy = Energy(power * seconds, row.energy_source)
        self.window = WindowReport(epoch, times, min(warmup, iterations), per_epoch, energy)
        share, done_s, done_j = self.partial
        self.partial = (share + iterations / per_epoch, done_s + seconds, done_j + energy.joules)

    def _stint(self, profile: dict[str, Any] | None) -> Stint:
        energy = Energy(self.overhead_j.joules, self.overhead_j.source)
        for report in self.reports:
            energy = energy + report.energy
        wall = self.overhead_s + sum(r.wall_s for r in self.reports) - self.prepaid_s
        energy = energy - self.prepaid
        if self.window is not None:
            energy = energy + self.window.energy
            wall += sum(self.window.iteration_s)
        return Stint(
            self.setting,
            self.role,
            tuple(self.reports),
            wall,
            energy,
            profile if not self.stints else None,
            self.switch_s,
            window=self.window,
        )

    def pause(self, profile: dict[str, Any] | None) -> Pause:
        stint = self._stint(profile)
        return Pause(
            stint.setting,
            stint.role,
            stint.epochs,
            stint.wall_s,
            stint.energy,
            profile,
            stint.window,
        )

    def go_on(self, decision: Decision, profile: dict[str, Any] | None) -> bool:
        """Close the stint at a pause; start the next one (a live switch costs its overhead)."""
        self.stints.append(self._stint(profile))
        self.reports = []
        self.window = None
        self.prepaid, self.prepaid_s = Energy.zero(), 0.0
        if decision.setting is None:
            self.overhead_s, self.overhead_j = 0.0, Energy.zero()
            return False
        epoch1 = self._rows(decision.setting)[0]
        switch_s = epoch1.switch_s if decision.setting != self.setting else 0.0
        self.setting, self.role = decision.setting, decision.role
        self.overhead_s = self.switch_s = switch_s
        self.overhead_j = _startup_energy(epoch1, switch_s)
        return True

    def finish(self, profile: dict[str, Any] | None) -> tuple[Stint, ...]:
        if self.reports or not self.stints:
            self.stints.append(self._stint(profile))
        return tuple(self.stints)
