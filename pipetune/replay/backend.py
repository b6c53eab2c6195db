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
  * wall = start-up + Σ(duration + eval); start-up energy = start-up × the energy rate
    (energy / wall) of the group's epoch 1, labelled with that epoch's energy source;
  * a segment with `decide_after` = k pauses after k epochs like the app does: `decide` is
    asked with the cost so far, and on False the segment ends there (the trial's progress is
    then k epochs, not all it asked for);
  * optional noise multiplies each epoch's duration, eval and energy by one lognormal(0, noise)
    factor (power unchanged), and start-up (and its energy) by another. The factors come from a
    numpy Generator seeded by (seed, workload, trial, setting, first epoch), so a replay does not
    depend on the order in which trials are interleaved.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from pipetune.backends.base import Backend, DecideCallback, EpochCallback
from pipetune.errors import SegmentFailed
from pipetune.records import Energy, EpochReport, Pause, Paused, SegmentRequest, SegmentResult
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
        setting = request.setting.label()
        rows = self.trace.epochs(self.workload, config, setting)
        first = self.progress(request.trial_id) + 1
        last = first + request.epochs - 1
        if not rows:
            recorded = ", ".join(self.trace.settings(self.workload, config)) or "none"
            raise SegmentFailed(
                f"replay: the trace has no epochs of workload {self.workload!r}, config "
                f"{config} at setting {setting!r} (settings recorded for this config: {recorded})"
            )
        if last > len(rows):
            raise SegmentFailed(
                f"replay: the segment needs epochs {first}..{last} of workload "
                f"{self.workload!r}, config {config} at setting {setting!r}; the trace has "
                f"epochs 1..{len(rows)}"
            )
        time_f, startup_f = self._noise(request.trial_id, setting, first, request.epochs)
        reports = [
            _report(row, float(f), request.hyperparameters)
            for row, f in zip(rows[first - 1 : last], time_f, strict=True)
        ]
        if first > 1:
            # A new process pays the JIT warm-up on its first epoch, whatever the trial's
            # epoch number: its cost is the group's epoch 1 (recorded in a fresh process),
            # its accuracy the epoch it really is.
            cold = _report(rows[0], float(time_f[0]), request.hyperparameters)
            reports[0] = dataclasses.replace(
                reports[0], duration_s=cold.duration_s, eval_s=cold.eval_s, energy=cold.energy
            )
        startup = rows[0].startup_s * startup_f
        extra: dict[str, Any] = {}
        if request.profile:
            profile = self.profile()
            if profile is None:
                extra["profile_error"] = f"the trace has no profile for {self.workload!r}"
            else:
                extra["profile"] = profile.to_dict()
        paused = None
        pause_at = request.decide_after if 0 < request.decide_after < request.epochs else 0
        for done, report in enumerate(reports, start=1):
            on_epoch(report)
            if done == pause_at:
                wall_so_far = startup + sum(r.wall_s for r in reports[:done])
                energy_so_far = _total(rows[0], startup, reports[:done])
                pause = Pause(
                    tuple(reports[:done]), wall_so_far, energy_so_far, extra.get("profile")
                )
                go_on = decide(pause) if decide is not None else True
                paused = Paused(done, go_on, wall_so_far, energy_so_far)
                if not go_on:
                    reports = reports[:done]
                    break
        energy = _total(rows[0], startup, reports)
        wall = startup + sum(r.wall_s for r in reports)
        self._done[request.trial_id] = first + len(reports) - 1
        return SegmentResult(reports, wall, energy, APP_ID, extra, paused)

    def _noise(self, trial_id: str, setting: str, first: int, epochs: int) -> tuple[Any, float]:
        """Per-epoch factors and the start-up factor; all 1 without noise."""
        if self.noise == 0.0:
            return np.ones(epochs), 1.0
        key = f"{self.workload}\0{trial_id}\0{setting}\0{first}".encode()
        digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        rng = np.random.default_rng([self.seed, digest])
        factors = rng.lognormal(0.0, self.noise, epochs + 1)
        return factors[1:], float(factors[0])


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
    )


def _total(epoch1: TraceRow, startup_s: float, reports: list[EpochReport]) -> Energy:
    energy = _startup_energy(epoch1, startup_s)
    for report in reports:
        energy = energy + report.energy
    return energy


def _startup_energy(epoch1: TraceRow, startup_s: float) -> Energy:
    rate = epoch1.energy_j / epoch1.wall_s if epoch1.wall_s > 0 else 0.0
    return Energy(rate * startup_s, epoch1.energy_source)
