"""The run's append-only event journal (JSON lines), and how segments are written in it.

The journal is the source of truth for `--resume`: every fact about a run is appended and
flushed to disk before the tuner acts on it, and `run_state.RunState.replay` rebuilds trials
and their segments from it alone. The events are typed in `run_events.py`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pipetune.errors import ResumeError
from pipetune.records import (
    Energy,
    EpochReport,
    Role,
    SegmentRecord,
    SystemSetting,
    WindowReport,
)

JOURNAL_NAME = "journal.jsonl"


class Journal:
    """Appends one JSON object per line, fsynced, so a crash loses at most the line in flight.

    `durable=False` skips the fsync: for replays, which are recomputed rather than resumed.
    """

    def __init__(self, path: Path, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "time": time.time(), **fields}
        self._file.write(json.dumps(event, sort_keys=True) + "\n")
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        return event

    def close(self) -> None:
        self._file.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events; a torn last line (crash mid-write) is dropped."""
    if not path.is_file():
        raise ResumeError(f"no journal at {path}: not a PipeTune run directory")
    events = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ResumeError(f"{path}:{number}: corrupt journal line") from None
    return events


def segment_event_fields(seg: SegmentRecord) -> dict[str, Any]:
    return {
        "index": seg.index,
        "setting": seg.setting.as_dict(),
        "role": seg.role.value,
        "wall_s": seg.wall_s,
        "energy": {"joules": seg.energy.joules, "source": seg.energy.source},
        "epochs": [epoch_to_dict(e) for e in seg.epochs],
        "error": seg.error,
        "profile": seg.profile,
        "process": seg.process,
        "switch_s": seg.switch_s,
        "window": window_to_dict(seg.window) if seg.window else None,
        "phases": seg.phases,
        **({"reused": seg.reused} if seg.reused else {}),
    }


def segment_from_event(event: dict[str, Any]) -> SegmentRecord:
    return SegmentRecord(
        index=event["index"],
        setting=SystemSetting.of(event["setting"]),
        role=Role(event["role"]),
        epochs=tuple(epoch_from_dict(e) for e in event["epochs"]),
        wall_s=event["wall_s"],
        energy=Energy(**event["energy"]),
        error=event.get("error"),
        profile=event.get("profile"),
        process=event.get("process", 0),
        switch_s=event.get("switch_s", 0.0),
        window=window_from_dict(event["window"]) if event.get("window") else None,
        phases=dict(event.get("phases") or {}),
        reused=int(event.get("reused") or 0),
    )


def window_to_dict(w: WindowReport) -> dict[str, Any]:
    return {
        "epoch": w.epoch,
        "iteration_s": list(w.iteration_s),
        "warmup": w.warmup,
        "epoch_iterations": w.epoch_iterations,
        "energy": {"joules": w.energy.joules, "source": w.energy.source},
        "system": w.system,
    }


def window_from_dict(d: dict[str, Any]) -> WindowReport:
    return WindowReport(
        epoch=d["epoch"],
        iteration_s=tuple(d["iteration_s"]),
        warmup=d["warmup"],
        epoch_iterations=d["epoch_iterations"],
        energy=Energy(**d["energy"]),
        system=d.get("system") or {},
    )


def epoch_to_dict(e: EpochReport) -> dict[str, Any]:
    return {
        "epoch": e.epoch,
        "duration_s": e.duration_s,
        "eval_s": e.eval_s,
        "loss": e.loss,
        "accuracy": e.accuracy,
        "samples": e.samples,
        "echoed": e.echoed,
        "energy": {"joules": e.energy.joules, "source": e.energy.source},
        "steady_s": e.steady_s,
        "system": e.system,
        "iterations": e.iterations,
        "iteration_spread": e.iteration_spread,
    }


def epoch_from_dict(d: dict[str, Any]) -> EpochReport:
    return EpochReport(
        epoch=d["epoch"],
        duration_s=d["duration_s"],
        eval_s=d["eval_s"],
        loss=d["loss"],
        accuracy=d["accuracy"],
        samples=d["samples"],
        echoed=d["echoed"],
        energy=Energy(**d["energy"]),
        steady_s=d.get("steady_s"),
        system=d.get("system") or {},
        iterations=d.get("iterations", 0),
        iteration_spread=d.get("iteration_spread"),
    )
