"""The trace format's vocabulary: versions, columns, and the problems a malformed file has.

The format is described in docs/TRACE_FORMAT.md; `trace_validate` checks a table against it,
`trace_files` reads and writes it, and `trace.Trace` is the validated, indexed result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.errors import PipeTuneError

VERSION = "4"
# The columns each version added, with the value they take in a file of an older version, which
# is still read: v2 traces predate live switching (every parameter change was a restart, and no
# app reported a steady pace), v3 traces predate the measurement of a reused process.
ADDED: dict[str, dict[str, Any]] = {
    "3": {"steady_s": math.nan, "switch_s": 0.0, "live": ""},
    "4": {"reuse_startup_s": math.nan, "reuse_epoch1_ratio": math.nan},
}
READABLE = ("4", "3", "2")  # newest first
PARQUET_VERSION_KEY = b"pipetune.trace.version"
CSV_LINES = {f"# pipetune-trace v{v}": v for v in READABLE}
CSV_VERSION_LINE = f"# pipetune-trace v{VERSION}"
MAX_PROBLEMS = 20

KEY = ("workload", "config", "setting", "epoch")
STRINGS = ("workload", "config", "setting", "energy_source")
NON_NEGATIVE = ("duration_s", "eval_s", "energy_j", "startup_s", "switch_s")
# what a reused process costs (docs/TRACE_FORMAT.md): both on a group's rows, or neither
REUSE = ("reuse_startup_s", "reuse_epoch1_ratio")
PER_GROUP = {
    "startup_s": "one start-up value",
    "switch_s": "one live-switch value",
    "reuse_startup_s": "one reused start-up value",
    "reuse_epoch1_ratio": "one reused first-epoch ratio",
}
COLUMNS = (
    "workload",
    "config",
    "setting",
    "epoch",
    "duration_s",
    "eval_s",
    "energy_j",
    "energy_source",
    "accuracy",
    "loss",
    "steady_s",
    "samples",
    "startup_s",
    "switch_s",
    "reuse_startup_s",
    "reuse_epoch1_ratio",
    "live",
    "profile",
    "synthetic",
)


def added_after(version: str) -> dict[str, Any]:
    """The columns a file of `version` lacks, with the values it is read with."""
    return {
        name: value
        for added, columns in ADDED.items()
        if int(added) > int(version)
        for name, value in columns.items()
    }


def columns_of(version: str) -> tuple[str, ...]:
    """The columns of a file of `version` (one of `READABLE`)."""
    later = added_after(version)
    return tuple(c for c in COLUMNS if c not in later)


@dataclass(frozen=True)
class TraceProblem:
    """One thing wrong with a trace; `row` is the 1-based data row (None: the whole file)."""

    row: int | None
    column: str | None
    expected: str
    found: str

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        where += [f"column {self.column!r}"] if self.column is not None else []
        prefix = ", ".join(where) or "file"
        return f"{prefix}: expected {self.expected}, found {self.found}"


class TraceError(PipeTuneError):
    """A trace file is malformed or cannot be read; carries every problem found (up to a cap)."""

    exit_code = 2

    def __init__(self, message: str, problems: Iterable[TraceProblem] = (), total: int = 0) -> None:
        self.message = message
        self.problems = list(problems)
        self.total = max(total, len(self.problems))
        lines = [message, *(f"  - {p}" for p in self.problems)]
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems)} more")
        super().__init__("\n".join(lines))

    def located(self, path: Path) -> TraceError:
        """The same error, its message prefixed with the file it is about."""
        return TraceError(f"{path}: {self.message}", self.problems, self.total)


def canonical_config(hyperparameters: Mapping[str, Any]) -> str:
    """The `config` column's form of a hyperparameter assignment: compact JSON, sorted keys."""
    return json.dumps(dict(hyperparameters), sort_keys=True, separators=(",", ":"), allow_nan=False)
