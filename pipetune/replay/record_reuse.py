"""What a segment costs in a reused process, measured by `pipetune trace record`.

Live, a segment launched as the one before it runs in that segment's process, which waits
idle for it (`reuseProcess`, backends/process.py): it skips the launch, and its first epoch
runs warm. So for each setting, the last group recorded there (the *host*) runs with process
reuse on, and its idle process is handed one more segment: one epoch of a configuration from
scratch, as the next trial of a tuning run would be. Its time outside that epoch (the
handover, the app's own start, the checkpoint save) is the reused start-up; its epoch over
the same configuration's recorded epoch 1 at the setting, which ran in a new process, is the
reused first epoch's ratio (both wall times: training and validation). The trace keeps both
on every group of the setting (docs/TRACE_FORMAT.md).

A new process's recorded start-up includes its teardown (Spark stopped, the process gone),
which a process that waits idle leaves for its retirement. So the host's process is retired
right after the measurement, and that time is added to the host's start-up: the host's rows
are then what a group recorded in a new process would be. When the measured segment fails,
the host's process dies with it, its teardown unmeasured, and the host is left out as well:
recording again records both. When the app ran the segment in a new process (it does not wait
idle), there is nothing to measure; the host is kept as measured, since its process ended.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.backends.base import Backend
from pipetune.errors import SegmentFailed
from pipetune.records import Decision, EpochReport, Pause, Role, SegmentRequest, SystemSetting


@dataclass(frozen=True)
class ReuseFigures:
    """What a segment launched at a setting costs in the idle process of an earlier one."""

    startup_s: float  # its time outside its epochs
    epoch1_ratio: float  # its first epoch's wall time over a new process's


@dataclass(frozen=True)
class ReuseMeasurement:
    """One measurement after a host group: the figures, or why there are none."""

    figures: ReuseFigures | None
    teardown_s: float = 0.0  # to add to the host's start-up (its process's retirement)
    host_ok: bool = True  # False: the host's start-up is incomplete, leave it out
    why: str = ""  # why there are no figures
    supported: bool = True  # False: the app does not wait idle; measure no other setting


def host_indices(settings: list[SystemSetting], measured: set[str]) -> set[int]:
    """Of the groups to record (their settings, in order), the last at each setting whose
    reuse figures are not measured yet: each runs with process reuse on, as a host."""
    last = {setting.label(): i for i, setting in enumerate(settings)}
    return {i for label, i in last.items() if label not in measured}


def reused_request(
    hyperparameters: dict[str, Any], setting: SystemSetting, number: int, work_dir: Path
) -> SegmentRequest:
    """One epoch of a new trial from scratch, launched as a group at `setting` is, and paused
    right after its start to be placed there as a group is."""
    segment_dir = work_dir / f"reuse-{number:03d}"
    shutil.rmtree(segment_dir, ignore_errors=True)  # from scratch: no checkpoint
    segment_dir.mkdir(parents=True)
    return SegmentRequest(
        trial_id=f"r{number:03d}",
        setting=setting,
        epochs=1,
        role=Role.TRAIN,
        hyperparameters=hyperparameters,
        checkpoint_dir=str(segment_dir / "checkpoint"),
        log_path=str(segment_dir / "segment.log"),
        launch=setting,  # a decision file, so the same pause after start as a group's
    )


def measure_reuse(
    backend: Backend, request: SegmentRequest, epoch1_wall_s: float
) -> ReuseMeasurement:
    """Run `request` in the idle process the host left in `backend`, then retire it.
    `epoch1_wall_s`: the wall time of epoch 1 of the request's configuration at its setting,
    recorded in a new process."""
    try:
        result = backend.run_segment(request, _ignore_epoch, _go_on)
    except SegmentFailed as exc:
        backend.close()
        why = f"the reused segment failed: {exc} (log: {request.log_path})"
        return ReuseMeasurement(None, host_ok=False, why=why)
    retiring = time.monotonic()
    backend.close()
    teardown_s = time.monotonic() - retiring
    if not result.reused:
        why = "the app ran it in a new process: it does not wait idle for another segment"
        return ReuseMeasurement(None, why=why, supported=False)
    if epoch1_wall_s <= 0 or not result.epochs:
        why = "no epoch 1 to compare its epoch with"
        return ReuseMeasurement(None, teardown_s, why=why)
    ratio = result.epochs[0].wall_s / epoch1_wall_s
    if ratio <= 0:
        return ReuseMeasurement(None, teardown_s, why="its epoch took no time")
    return ReuseMeasurement(ReuseFigures(result.startup_s, ratio), teardown_s)


def _ignore_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    return None


def _go_on(pause: Pause) -> Decision:
    return Decision(pause.setting, pause.role, 0, "measuring a reused process")
