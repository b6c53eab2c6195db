"""The tuner's metrics schema, in one place (also in docs/ARCHITECTURE.md). `power` is defined
in schema_power.py, once for the tuner and the node-side collectors.

- `epoch`   tags run, trial, role, setting, epoch; fields duration_s, eval_s, loss, accuracy,
  energy_j, energy_source
- `segment` tags run, trial, role, setting, index; fields wall_s, startup_s, epochs, energy_j,
  energy_source, ok, and on a process's first segment one `startup_<phase>_s` per start-up
  phase (launch, imports, checks, spark_context, data, model, save, teardown)
- `profile` tags run, trial, source; fields window_s and one per feature (a perf event or a
  proc.* counter, as a rate per second)
- `power`   tags node, source, domain, run, trial; field watts (schema_power.power_point)

A point's identity is measurement + tags + time, so the epoch number and segment index are
tags: two epochs of one segment can never overwrite each other.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from pipetune.records import EpochReport, SegmentRecord
from pipetune.store.base import Point
from pipetune.store.schema_power import DOMAIN_BY_SOURCE, power_point, seconds_to_ns

log = logging.getLogger(__name__)

EPOCH = "epoch"
SEGMENT = "segment"
PROFILE = "profile"


def segment_points(
    run_id: str, trial_id: str, seg: SegmentRecord, power: list[tuple[float, float, str]]
) -> list[Point]:
    """Every point one finished (or failed) segment produces."""
    now = time.time_ns()
    points = [epoch_point(run_id, trial_id, seg, e, now) for e in seg.epochs]
    points.append(segment_point(run_id, trial_id, seg, now))
    if seg.profile:
        points.append(profile_point(run_id, trial_id, seg.profile, now))
    points += power_points(run_id, trial_id, power)
    return points


def epoch_point(
    run_id: str, trial_id: str, seg: SegmentRecord, e: EpochReport, time_ns: int
) -> Point:
    tags = {**_tags(run_id, trial_id, seg), "epoch": str(e.epoch)}
    return Point(
        EPOCH,
        tags,
        {
            "duration_s": float(e.duration_s),
            "eval_s": float(e.eval_s),
            "loss": float(e.loss) if e.loss is not None else float("nan"),
            "accuracy": float(e.accuracy),
            "energy_j": float(e.energy.joules),
            "energy_source": e.energy.source,
        },
        time_ns,
    )


def segment_point(run_id: str, trial_id: str, seg: SegmentRecord, time_ns: int) -> Point:
    return Point(
        SEGMENT,
        {**_tags(run_id, trial_id, seg), "index": str(seg.index)},
        {
            **{f"startup_{_field(k)}_s": float(v) for k, v in seg.phases.items()},
            "wall_s": float(seg.wall_s),
            "startup_s": float(seg.startup_s),
            "epochs": len(seg.epochs),
            "energy_j": float(seg.energy.joules),
            "energy_source": seg.energy.source,
            "ok": seg.ok,
        },
        time_ns,
    )


def profile_point(run_id: str, trial_id: str, profile: dict[str, Any], time_ns: int) -> Point:
    fields: dict[str, Any] = {"window_s": float(profile["window_s"])}
    fields.update({name: float(value) for name, value in profile["features"].items()})
    tags = {"run": run_id, "trial": trial_id, "source": str(profile["source"])}
    return Point(PROFILE, tags, fields, time_ns)


def power_points(
    run_id: str, trial_id: str, samples: list[tuple[float, float, str]]
) -> list[Point]:
    """Power over a segment: meter samples, or the estimate's (domain says which). A sample
    the schema refuses (a negative or non-finite power) is logged and left out."""
    node = socket.gethostname()
    points = []
    for at, watts, source in samples:
        domain = DOMAIN_BY_SOURCE.get(source, source)
        try:
            points.append(
                power_point(
                    node, source, domain, watts, seconds_to_ns(at), run=run_id, trial=trial_id
                )
            )
        except ValueError as exc:
            log.warning("power sample at %.3f not written: %s", at, exc)
    return points


def _field(name: str) -> str:
    """A phase name as part of a field name: "spark context" → "spark_context"."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _tags(run_id: str, trial_id: str, seg: SegmentRecord) -> dict[str, str]:
    return {
        "run": run_id,
        "trial": trial_id,
        "role": seg.role.value,
        "setting": seg.setting.label(),
    }
