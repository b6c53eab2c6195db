"""Trace files: one row per (workload, config, setting, epoch), validated on the way in.

The format is described in docs/TRACE_FORMAT.md (its names: `trace_format`). A `Trace` is
immutable once built: its frame is normalised (fixed column order and dtypes, by
`trace_validate`) and indexed by (workload, config, setting) so that a replay looks up a
segment's epochs without scanning the table. `trace_files` reads and writes the files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipetune.records import SystemSetting
from pipetune.replay.trace_files import file_kind, read_trace_file, write_trace_file
from pipetune.replay.trace_format import (
    COLUMNS,
    KEY,
    VERSION,
    TraceError,
    TraceProblem,
    canonical_config,
)
from pipetune.replay.trace_validate import upgraded, validated
from pipetune.telemetry.profile import JobProfile

# The format's names, for callers that import them with the class.
__all__ = [
    "COLUMNS",
    "VERSION",
    "ReuseCost",
    "Trace",
    "TraceError",
    "TraceProblem",
    "TraceRow",
    "canonical_config",
]


@dataclass(frozen=True)
class TraceRow:
    """One recorded epoch of a trial that ran at one setting from epoch 1."""

    epoch: int
    duration_s: float
    eval_s: float
    energy_j: float
    energy_source: str
    accuracy: float
    loss: float | None
    startup_s: float
    samples: int = 0
    steady_s: float | None = None  # training time at the pace of the epoch's second half
    switch_s: float = 0.0  # cost of a live switch into the group's setting
    # what a segment costs in a reused process launched at the group's setting (None: not
    # measured): its start-up, and its first epoch as a share of the group's epoch 1
    reuse_startup_s: float | None = None
    reuse_epoch1_ratio: float | None = None

    @property
    def wall_s(self) -> float:
        return self.duration_s + self.eval_s


@dataclass(frozen=True)
class ReuseCost:
    """What a segment costs in an idle process of an earlier segment launched alike, instead
    of a new process: its start-up, and its first epoch as a share (`epoch1_ratio`) of the
    group's recorded epoch 1 (which ran in a new process)."""

    startup_s: float
    epoch1_ratio: float


def _config_key(config: str | Mapping[str, Any]) -> str:
    return config if isinstance(config, str) else canonical_config(config)


def _setting_key(setting: str | SystemSetting) -> str:
    return setting if isinstance(setting, str) else setting.label()


class Trace:
    """A validated trace, indexed by (workload, config, setting)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        """Validate `frame` (every problem at once) and index it. Raises `TraceError`."""
        self._frame = validated(frame)
        self._groups: dict[tuple[str, str, str], list[TraceRow]] = {}
        self._profiles: dict[str, JobProfile] = {}
        self._live: dict[str, frozenset[str]] = {}
        self._reused: set[str] = set()  # workloads with reuse figures
        self._index()

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a `.parquet` or `.csv.gz` trace; raises `TraceError` for anything malformed."""
        p = Path(path)
        kind = file_kind(p)
        if not p.is_file():
            raise TraceError(f"{p}: no such trace file")
        try:
            frame, version = read_trace_file(p, kind)
            frame = upgraded(frame, version)
        except TraceError as exc:
            raise exc.located(p) from None
        except (OSError, ValueError, EOFError) as exc:
            raise TraceError(f"{p}: cannot read the trace: {exc}") from None
        try:
            return cls(frame)
        except TraceError as exc:
            raise exc.located(p) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a temporary file, then rename); the format follows the extension."""
        p = Path(path)
        kind = file_kind(p)
        tmp = p.with_name(p.name + ".tmp")
        write_trace_file(self._frame, tmp, kind)
        os.replace(tmp, p)

    # -- queries -------------------------------------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """A copy of the normalised table (columns in `COLUMNS` order)."""
        return self._frame.copy()

    @property
    def is_synthetic(self) -> bool:
        """True when the trace has rows and every row is synthetic."""
        return bool(len(self._frame)) and bool(self._frame["synthetic"].all())

    def __len__(self) -> int:
        return len(self._frame)

    def workloads(self) -> list[str]:
        return sorted({w for w, _, _ in self._groups})

    def configs(self, workload: str) -> list[str]:
        return sorted({c for w, c, _ in self._groups if w == workload})

    def settings(self, workload: str, config: str | Mapping[str, Any]) -> list[str]:
        key = _config_key(config)
        return sorted({s for w, c, s in self._groups if w == workload and c == key})

    def has_group(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> bool:
        return (workload, _config_key(config), _setting_key(setting)) in self._groups

    def epochs(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> list[TraceRow]:
        """The group's rows ordered by epoch (1..n); an empty list for an unknown group."""
        return list(self._groups.get((workload, _config_key(config), _setting_key(setting)), []))

    def startup_s(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> float | None:
        rows = self.epochs(workload, config, setting)
        return rows[0].startup_s if rows else None

    def switch_s(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> float | None:
        """The measured cost of a live switch into the group's setting; None: unknown group."""
        rows = self.epochs(workload, config, setting)
        return rows[0].switch_s if rows else None

    def reuse(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> ReuseCost | None:
        """What a segment of the group costs in a reused process; None when not measured."""
        rows = self.epochs(workload, config, setting)
        if not rows or rows[0].reuse_startup_s is None or rows[0].reuse_epoch1_ratio is None:
            return None
        return ReuseCost(rows[0].reuse_startup_s, rows[0].reuse_epoch1_ratio)

    def has_reuse(self, workload: str) -> bool:
        """Whether any group of the workload has its reuse figures."""
        return workload in self._reused

    def live(self, workload: str) -> frozenset[str]:
        """The system parameters applied live for the workload (empty: none, or unknown)."""
        return self._live.get(workload, frozenset())

    def profile(self, workload: str) -> JobProfile | None:
        """The workload's profiling-epoch profile, None when the trace has none for it."""
        return self._profiles.get(workload)

    def _index(self) -> None:
        f = self._frame
        names = (*KEY, "duration_s", "eval_s", "energy_j", "energy_source", "accuracy", "loss")
        cols = [f[c].tolist() for c in (*names, "startup_s", "samples", "steady_s", "switch_s")]
        reuse = zip(f["reuse_startup_s"].tolist(), f["reuse_epoch1_ratio"].tolist(), strict=True)
        for values, (reuse_s, ratio) in zip(zip(*cols, strict=True), reuse, strict=True):
            w, c, s, e, dur, ev, en, src, acc, loss, st, n, steady, sw = values
            row = TraceRow(
                e,
                dur,
                ev,
                en,
                src,
                acc,
                _present(loss),
                st,
                n,
                steady_s=_present(steady),
                switch_s=sw,
                reuse_startup_s=_present(reuse_s),
                reuse_epoch1_ratio=_present(ratio),
            )
            self._groups.setdefault((w, c, s), []).append(row)
            if row.reuse_startup_s is not None:
                self._reused.add(w)
        for rows in self._groups.values():
            rows.sort(key=lambda r: r.epoch)
        with_profile = f[f["profile"].notna()]
        for w, text in zip(with_profile["workload"], with_profile["profile"], strict=True):
            if w not in self._profiles:
                self._profiles[w] = JobProfile.from_dict(json.loads(text))
        for w, text in f.groupby("workload", sort=False)["live"].first().items():
            self._live[str(w)] = frozenset(text.split(",")) if text else frozenset()


def _present(value: float) -> float | None:
    """A nullable column's cell: None for null (NaN)."""
    return None if math.isnan(value) else value
