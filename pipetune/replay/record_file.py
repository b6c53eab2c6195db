"""The trace a recording writes (replay/record.py): the rows of the file it continues and its
own, the workload's profile and reuse figures, rewritten to the file (atomically) after each
change, so that an interruption loses only what was in flight."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipetune.replay.record_reuse import ReuseFigures
from pipetune.replay.trace import COLUMNS, Trace


@dataclass
class Recording:
    """The trace being recorded: the file's rows and this recording's, the workload's profile
    and reuse figures (by setting label), and the trace last written."""

    out: Path
    workload: str
    rows: list[dict[str, Any]]
    profile: str | None = None
    reuse: dict[str, ReuseFigures] = field(default_factory=dict)
    trace: Trace | None = None

    def groups(self) -> set[tuple[str, str]]:
        """The workload's recorded (config, setting) groups."""
        return {(r["config"], r["setting"]) for r in self.rows if r["workload"] == self.workload}

    def epoch1_wall_s(self, config: str, label: str) -> float | None:
        """The wall time of epoch 1 of a recorded group of the workload (None: none)."""
        wanted = (self.workload, config, label, 1)
        for r in self.rows:
            if (r["workload"], r["config"], r["setting"], r["epoch"]) == wanted:
                return float(r["duration_s"]) + float(r["eval_s"])
        return None

    def write(self) -> None:
        """Every epoch-1 row of the workload carries its profile (one, identical: the format),
        and every row of it its setting's reuse figures (null where not measured)."""
        for row in self.rows:
            if row["workload"] == self.workload:
                row["profile"] = self.profile if row["epoch"] == 1 else None
                figures = self.reuse.get(row["setting"])
                row["reuse_startup_s"] = figures.startup_s if figures else None
                row["reuse_epoch1_ratio"] = figures.epoch1_ratio if figures else None
        self.trace = Trace(pd.DataFrame(self.rows, columns=list(COLUMNS)))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.trace.save(self.out)


def recorded(out: Path, workload: str, planned: int, say: Callable[[str], None]) -> Recording:
    """What `out` already holds: its rows, and the workload's profile (None: not yet measured)
    and reuse figures. Nothing when there is no `out`. `planned`: the groups the recording
    covers, for the message."""
    if not out.exists():
        return Recording(out, workload, [])
    existing = Trace.load(out).frame
    rows: list[dict[str, Any]] = existing.to_dict("records")
    rec = Recording(out, workload, rows)
    mine = [r for r in rows if r["workload"] == workload]
    rec.profile = next((r["profile"] for r in mine if r["profile"]), None)
    for r in mine:
        if not math.isnan(r["reuse_startup_s"]):
            rec.reuse[r["setting"]] = ReuseFigures(r["reuse_startup_s"], r["reuse_epoch1_ratio"])
    say(f"continuing {out}: {len(rec.groups())} of {planned} group(s) already recorded")
    return rec
