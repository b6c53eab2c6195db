"""The metrics schema, in one place (also documented in docs/ARCHITECTURE.md).

measurement `epoch`   tags: run, trial, role, setting      fields: epoch, duration_s, eval_s,
                      loss, accuracy, energy_j, energy_source
measurement `segment` tags: run, trial, role, setting      fields: index, wall_s, startup_s,
                      epochs, energy_j, energy_source, ok
"""

from __future__ import annotations

import time

from pipetune.records import EpochReport, SegmentRecord
from pipetune.store.base import Point

EPOCH = "epoch"
SEGMENT = "segment"


def epoch_point(run_id: str, trial_id: str, seg: SegmentRecord, e: EpochReport) -> Point:
    return Point(
        EPOCH,
        _tags(run_id, trial_id, seg),
        {
            "epoch": e.epoch,
            "duration_s": e.duration_s,
            "eval_s": e.eval_s,
            "loss": e.loss if e.loss is not None else float("nan"),
            "accuracy": e.accuracy,
            "energy_j": e.energy.joules,
            "energy_source": e.energy.source,
        },
        time.time_ns(),
    )


def segment_point(run_id: str, trial_id: str, seg: SegmentRecord) -> Point:
    return Point(
        SEGMENT,
        _tags(run_id, trial_id, seg),
        {
            "index": seg.index,
            "wall_s": seg.wall_s,
            "startup_s": seg.startup_s,
            "epochs": len(seg.epochs),
            "energy_j": seg.energy.joules,
            "energy_source": seg.energy.source,
            "ok": seg.ok,
        },
        time.time_ns(),
    )


def _tags(run_id: str, trial_id: str, seg: SegmentRecord) -> dict[str, str]:
    return {
        "run": run_id,
        "trial": trial_id,
        "role": seg.role.value,
        "setting": seg.setting.label(),
    }
