"""A backend that answers segments from a trace instead of Spark.

A replayed process plays the app's side of the contract (pipetune/contract.py) from the trace:
its events, pausing where the decisions say, and what each part cost as recorded. Segments
run through the same lifecycle as live ones (backends/base.py); only the job and its meter
differ.

Semantics (docs/TRACE_FORMAT.md, "Replay"):
  * the trial's hyperparameters (canonical JSON) and the segment's setting select a group;
    the trial's progress is the number of epochs this backend has already replayed for it, so a
    segment continues at epoch e = progress + 1 and returns the group's rows e..e+k-1;
  * time, energy and ACCURACY all come from those rows: accuracy depends on the epochs trained,
    approximated by the same epoch index recorded under the segment's setting; but the first
    epoch of a segment in a new process that does not start at epoch 1 costs what the group's
    epoch 1 cost, because a new process's first epoch pays the JIT warm-up (recorded epochs
    2.. ran warm, 1.3-2.5x faster here);
  * a process is launched at the request's launch setting (its start-up is that group's) and
    runs its first stint at the request's setting. At a pause `decide` returns a `Decision`:
    stop there, go on, or go on at another setting (a live switch): the process stays warm,
    so later epochs cost what the trace recorded for their epoch number under the new
    setting, plus the new group's measured `switch_s` (its energy at epoch 1's rate);
  * with `reuse` (the app config's `reuseProcess`) and a trace that measured it, a process
    whose segment ended cleanly waits idle, as backends/process.py keeps one, and the next
    segment launched at the same setting runs in it: it pays the launch group's
    `reuse_startup_s` instead of its start-up, and its first epoch (whatever its number) the
    epoch 1 of the group it runs at times the launch group's `reuse_epoch1_ratio`; its result
    says `reused`. A process that failed or was killed, a segment launched at another setting
    (the idle one is then retired) or a launch group without the figures means a new process;
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
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipetune import contract
from pipetune.backends.base import Backend, Job
from pipetune.backends.lifecycle import takes_decisions
from pipetune.backends.meter import SegmentMeter
from pipetune.errors import SegmentFailed
from pipetune.records import (
    Energy,
    EpochReport,
    SegmentRequest,
    SystemSetting,
    WindowReport,
)
from pipetune.replay.trace import ReuseCost, Trace, TraceError, TraceRow, canonical_config
from pipetune.telemetry.profile import JobProfile

APP_ID = "replay"


class ReplayBackend(Backend["ReplayedProcess"]):
    """Replays one workload of a trace; keeps each trial's epochs done in memory, and with
    `reuse` the idle process a segment left (see the module doc)."""

    def __init__(
        self, trace: Trace, workload: str, noise: float = 0.0, seed: int = 0, reuse: bool = False
    ) -> None:
        if workload not in trace.workloads():
            known = ", ".join(trace.workloads()[:10]) or "none"
            raise TraceError(f"workload {workload!r} is not in the trace (workloads: {known})")
        if not (noise >= 0.0 and np.isfinite(noise)):
            raise ValueError(f"noise: expected a finite number >= 0, found {noise!r}")
        super().__init__()
        self.trace = trace
        self.workload = workload
        self.noise = float(noise)
        self.seed = int(seed)
        self._done: dict[str, int] = {}
        # processes wait idle for the next segment: asked for, and the trace says what it costs
        self.reuses = reuse and trace.has_reuse(workload)
        self._idle: tuple[str, int] | None = None  # its launch setting, segments it ran

    def progress(self, trial_id: str) -> int:
        """Epochs replayed so far for `trial_id` (0 for a trial not seen yet)."""
        return self._done.get(trial_id, 0)

    def profile(self) -> JobProfile | None:
        """The workload's profiling-epoch profile from the trace, None if it has none."""
        return self.trace.profile(self.workload)

    def stop(self) -> None:
        super().stop()
        self._idle = None

    def close(self) -> None:
        """Retire the idle process."""
        self._idle = None

    def _start(self, request: SegmentRequest) -> ReplayedProcess:
        if request.epochs < 1:
            raise SegmentFailed(f"replay: asked for {request.epochs} epoch(s), expected >= 1")
        config = canonical_config(request.hyperparameters)
        first = self.progress(request.trial_id) + 1
        reused, cost = self._reusable(request, config)
        return ReplayedProcess(self, request, config, first, reused, cost)

    def _reusable(self, request: SegmentRequest, config: str) -> tuple[int, ReuseCost | None]:
        """The idle process, if this segment is launched as it was and the trace has what a
        reused process costs there: the segments it ran and that cost; (0, None) for a new
        process. The idle process is retired otherwise."""
        idle, self._idle = self._idle, None
        launch = request.launched_as.label()
        if idle is None or idle[0] != launch:
            return 0, None
        cost = self.trace.reuse(self.workload, config, launch)
        return (idle[1], cost) if cost is not None else (0, None)

    def _meter(self, job: ReplayedProcess, request: SegmentRequest) -> SegmentMeter:
        return job  # what its stints cost is in the trace

    def _finished(self, job: ReplayedProcess, idle: bool, ended: bool) -> None:
        if ended:
            self._done[job.request.trial_id] = job.first + job.epochs_run - 1
        if idle:  # it waits for the next segment launched alike
            self._idle = (job.request.launched_as.label(), job.reused + 1)

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


class ReplayedProcess(Job, SegmentMeter):
    """One replayed process: the app's events, played from the trace and paused where the
    decisions say, and what each part of it cost there (its own meter)."""

    command = "replay"

    def __init__(
        self,
        backend: ReplayBackend,
        request: SegmentRequest,
        config: str,
        first: int,
        reused: int = 0,
        reuse: ReuseCost | None = None,
    ) -> None:
        self.backend = backend
        self.request = request
        self.config = config
        self.first = first
        self.reused = reused  # segments its process ran before (0: a new process)
        # its first epoch's share of a new process's (None: it is a new process)
        self.warm = reuse.epoch1_ratio if reuse is not None else None
        self.setting: SystemSetting = request.setting
        self.reports: list[EpochReport] = []  # of the stint in progress
        self.epochs_run = 0
        rows = self._rows(request.launched_as)
        factor = backend.noise_factor(request.trial_id, request.launched_as.label(), first)
        startup_s = reuse.startup_s if reuse is not None else rows[0].startup_s
        self.overhead_s = startup_s * factor  # the start-up: charged to stint 1
        self.overhead_j = _startup_energy(rows[0], self.overhead_s)
        self.switch = 0.0  # the recorded live switch that began the stint in progress
        self.in_window: WindowReport | None = None  # the window that is the stint in progress
        # windows run so far inside the epoch in progress: their share of it, time, energy
        self.partial = (0.0, 0.0, 0.0)
        # of this stint's epochs, what their windows' stints already charged
        self.prepaid = Energy.zero()
        self.prepaid_s = 0.0
        self.answered = contract.Decision(0, False)  # the decision at the last pause
        self.profiling = False
        self.problems: dict[str, Any] = {}  # profile_error, ...: kept in the notes

    # ------------------------------------------------------------------ the app's side

    def events(self) -> Iterator[dict[str, Any]]:
        """As the app: start, pause (right after start with a decision file, then where the
        last decision said; windows inside the next epoch), epochs, end, and idle when the
        backend keeps processes for the next segment."""
        yield {"event": contract.START, "app_id": APP_ID, "windows": True}
        last = self.first + self.request.epochs - 1
        epoch, next_pause = self.first - 1, 0
        paused = takes_decisions(self.request)
        while True:
            if paused:
                yield contract.pause_event(epoch)
                while self.answered.go_on and self.answered.iterations:
                    yield {"event": contract.WINDOW, "epoch": epoch + 1}
                    yield contract.pause_event(epoch, self.answered.iterations)
                if not self.answered.go_on:
                    break
                pause_after = self.answered.pause_after
                next_pause = epoch + pause_after if pause_after else 0
            if epoch >= last:
                break
            epoch += 1
            yield {"event": contract.EPOCH, "epoch": epoch}
            paused = epoch == next_pause and epoch != last
        yield {"event": contract.END}
        if self.backend.reuses:
            yield contract.idle_event(self.reused + 1)

    def place(self, setting: SystemSetting, initial: bool) -> None:
        """A live switch (not the first placement: the process was priced at its launch
        setting, and its first stint runs at the segment's): the process stays warm, and the
        next stint pays the new group's recorded `switch_s`, its energy at epoch 1's rate."""
        if initial:
            return
        epoch1 = self._rows(setting)[0]
        self.setting = setting
        self.switch = self.overhead_s = epoch1.switch_s
        self.overhead_j = _startup_energy(epoch1, epoch1.switch_s)

    def answer(self, decision: contract.Decision) -> None:
        self.answered = decision
        if not decision.go_on:  # nothing more is charged
            self.overhead_s, self.overhead_j = 0.0, Energy.zero()

    def kill(self) -> None:
        """Nothing runs."""

    # ------------------------------------------------------------------ its meter

    def epoch(self, event: dict[str, Any]) -> EpochReport:
        if self.profiling:  # the profiling epoch: the trace's profile of the workload
            self.profiling = False
            profile = self.backend.profile()
            if profile is None:
                self.problems["profile_error"] = (
                    f"the trace has no profile for {self.backend.workload!r}"
                )
            else:
                self.profile = profile.to_dict()
        return self._epoch(int(event["epoch"]))

    def window(self, event: dict[str, Any], warmup: int) -> WindowReport:
        return self._run_window(int(event["epoch"]), self.answered.iterations, warmup)

    def cut(self) -> tuple[float, Energy]:
        """The stint's start-up or switch, its epochs (less what their windows' stints
        already charged) and its window."""
        energy = Energy(self.overhead_j.joules, self.overhead_j.source)
        for report in self.reports:
            energy = energy + report.energy
        wall = self.overhead_s + sum(r.wall_s for r in self.reports) - self.prepaid_s
        energy = energy - self.prepaid
        if self.in_window is not None:
            energy = energy + self.in_window.energy
            wall += sum(self.in_window.iteration_s)
        self.reports = []
        self.in_window = None
        self.prepaid, self.prepaid_s = Energy.zero(), 0.0
        # going on at this setting costs nothing; `place` prices a switch, `answer` a stop
        self.switch = self.overhead_s = 0.0
        self.overhead_j = _startup_energy(self._rows(self.setting)[0], 0.0)
        return wall, energy

    def switch_s(self, paused_at: float) -> float:
        return self.switch

    def begin_profile(self) -> None:
        self.profiling = True

    def notes(self) -> dict[str, Any]:
        return dict(self.problems)

    # ------------------------------------------------------------------ the trace

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

    def _epoch(self, epoch: int) -> EpochReport:
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
        if self.epochs_run == 0 and (epoch > 1 or self.warm is not None):
            # A new process pays the JIT warm-up on its first epoch, whatever the trial's
            # epoch number: its cost is the group's epoch 1 (recorded in a fresh process),
            # its accuracy the epoch it really is. A reused process pays the share of it that
            # was measured in one; a live switch keeps the process warm.
            share = factor if self.warm is None else factor * self.warm
            cold = _report(rows[0], share, self.request.hyperparameters)
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

    def _run_window(self, epoch: int, iterations: int, warmup: int) -> WindowReport:
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
        window = WindowReport(epoch, times, min(warmup, iterations), per_epoch, energy)
        share, done_s, done_j = self.partial
        self.partial = (share + iterations / per_epoch, done_s + seconds, done_j + energy.joules)
        self.in_window = window
        return window
