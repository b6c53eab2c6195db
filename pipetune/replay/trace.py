"""Trace files: one row per (workload, config, setting, epoch), validated on the way in.

The format is described in docs/TRACE_FORMAT.md. A `Trace` is immutable once built: its frame
is normalised (fixed column order and dtypes) and indexed by (workload, config, setting) so
that a replay looks up a segment's epochs without scanning the table.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipetune.errors import PipeTuneError
from pipetune.records import SystemSetting
from pipetune.telemetry.profile import JobProfile, ProfileError

VERSION = "2"
PARQUET_VERSION_KEY = b"pipetune.trace.version"
CSV_VERSION_LINE = f"# pipetune-trace v{VERSION}"
MAX_PROBLEMS = 20

KEY = ("workload", "config", "setting", "epoch")
STRINGS = ("workload", "config", "setting", "energy_source")
NON_NEGATIVE = ("duration_s", "eval_s", "energy_j", "startup_s")
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
    "samples",
    "startup_s",
    "profile",
    "synthetic",
)
_SETTING = re.compile(r"[^=,]+=[^=,]*(,[^=,]+=[^=,]*)*")
_TRUE = {"true": True, "1": True, "false": False, "0": False}


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
        self.problems = list(problems)
        self.total = max(total, len(self.problems))
        lines = [message, *(f"  - {p}" for p in self.problems)]
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems)} more")
        super().__init__("\n".join(lines))


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

    @property
    def wall_s(self) -> float:
        return self.duration_s + self.eval_s


def canonical_config(hyperparameters: Mapping[str, Any]) -> str:
    """The `config` column's form of a hyperparameter assignment: compact JSON, sorted keys."""
    return json.dumps(dict(hyperparameters), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _config_key(config: str | Mapping[str, Any]) -> str:
    return config if isinstance(config, str) else canonical_config(config)


def _setting_key(setting: str | SystemSetting) -> str:
    return setting if isinstance(setting, str) else setting.label()


class Trace:
    """A validated trace, indexed by (workload, config, setting)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        """Validate `frame` (every problem at once) and index it. Raises `TraceError`."""
        self._frame = _validated(frame)
        self._groups: dict[tuple[str, str, str], list[TraceRow]] = {}
        self._profiles: dict[str, JobProfile] = {}
        self._index()

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a `.parquet` or `.csv.gz` trace; raises `TraceError` for anything malformed."""
        p = Path(path)
        kind = _kind(p)
        if not p.is_file():
            raise TraceError(f"{p}: no such trace file")
        try:
            frame = _read_parquet(p) if kind == "parquet" else _read_csv(p)
        except TraceError as exc:
            raise TraceError(f"{p}: {exc}") from None
        except (OSError, ValueError, EOFError) as exc:
            raise TraceError(f"{p}: cannot read the trace: {exc}") from None
        try:
            return cls(frame)
        except TraceError as exc:
            raise TraceError(f"{p}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a temporary file, then rename); the format follows the extension."""
        p = Path(path)
        kind = _kind(p)
        tmp = p.with_name(p.name + ".tmp")
        if kind == "parquet":
            _write_parquet(self._frame, tmp)
        else:
            _write_csv(self._frame, tmp)
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

    def profile(self, workload: str) -> JobProfile | None:
        """The workload's profiling-epoch profile, None when the trace has none for it."""
        return self._profiles.get(workload)

    def _index(self) -> None:
        f = self._frame
        names = (*KEY, "duration_s", "eval_s", "energy_j", "energy_source", "accuracy", "loss")
        cols = [f[c].tolist() for c in (*names, "startup_s", "samples")]
        for w, c, s, e, dur, ev, en, src, acc, loss, st, n in zip(*cols, strict=True):
            row = TraceRow(e, dur, ev, en, src, acc, None if math.isnan(loss) else loss, st, n)
            self._groups.setdefault((w, c, s), []).append(row)
        for rows in self._groups.values():
            rows.sort(key=lambda r: r.epoch)
        with_profile = f[f["profile"].notna()]
        for w, text in zip(with_profile["workload"], with_profile["profile"], strict=True):
            if w not in self._profiles:
                self._profiles[w] = JobProfile.from_dict(json.loads(text))


# -- validation --------------------------------------------------------------------------------


class _Problems:
    """Collects problems, keeping at most `MAX_PROBLEMS` per check but counting them all."""

    def __init__(self) -> None:
        self.items: list[TraceProblem] = []
        self.total = 0

    def add(self, problem: TraceProblem) -> None:
        self.items.append(problem)
        self.total += 1

    def where(
        self, mask: pd.Series, column: str, expected: str, found: Callable[[int], str]
    ) -> None:
        """One problem per row where `mask` holds; `found(position)` describes the value."""
        positions = np.flatnonzero(mask.to_numpy(dtype=bool))
        self.total += len(positions)
        for pos in positions[:MAX_PROBLEMS]:
            self.items.append(TraceProblem(int(pos) + 1, column, expected, found(int(pos))))

    def raise_if_any(self) -> None:
        if self.total:
            shown = sorted(self.items, key=_problem_order)
            raise TraceError(
                f"malformed trace: {self.total} problem(s)", shown[:MAX_PROBLEMS], self.total
            )


def _problem_order(p: TraceProblem) -> tuple[int, int]:
    """File-level problems first, then by row, then by column position."""
    column = COLUMNS.index(p.column) if p.column in COLUMNS else len(COLUMNS)
    return (p.row or 0, column)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _validated(frame: pd.DataFrame) -> pd.DataFrame:
    problems = _Problems()
    for name in COLUMNS:
        if name not in frame.columns:
            problems.add(TraceProblem(None, name, "this column", "no such column"))
    for name in frame.columns:
        if name not in COLUMNS:
            problems.add(
                TraceProblem(
                    None, str(name), f"only the columns of v{VERSION}", "an unknown column"
                )
            )
    problems.raise_if_any()
    raw = {name: frame[name].reset_index(drop=True) for name in COLUMNS}
    out: dict[str, pd.Series] = {}
    for name in STRINGS:
        out[name] = _strings(raw[name], name, problems)
    _check_configs(out["config"], problems)
    _check_settings(out["setting"], problems)
    out["epoch"] = _numbers(raw["epoch"], "epoch", problems, "an integer >= 1", integer=True)
    for name in NON_NEGATIVE:
        out[name] = _numbers(raw[name], name, problems, "a finite number >= 0")
    out["accuracy"] = _numbers(raw["accuracy"], "accuracy", problems, "a number in [0, 1]", hi=1.0)
    out["loss"] = _numbers(raw["loss"], "loss", problems, "a finite number or null", nullable=True)
    out["samples"] = _numbers(raw["samples"], "samples", problems, "an integer >= 1", integer=True)
    out["synthetic"] = _booleans(raw["synthetic"], problems)
    out["profile"] = _profiles(raw["profile"], problems)
    problems.raise_if_any()
    result = pd.DataFrame({name: out[name] for name in COLUMNS})
    result["epoch"] = result["epoch"].astype("int64")
    result["samples"] = result["samples"].astype("int64")
    result["profile"] = result["profile"].astype(object).where(result["profile"].notna(), None)
    _check_groups(result, problems)
    problems.raise_if_any()
    return result


def _strings(values: pd.Series, name: str, problems: _Problems) -> pd.Series:
    values = values.astype(object)
    ok = values.map(lambda v: isinstance(v, str) and v != "")
    problems.where(~ok, name, "a non-empty string", lambda i: _show(values.iloc[i]))
    return values.where(ok, "")


def _show(value: Any) -> str:
    return "null" if _is_null(value) else repr(value)


def _check_configs(configs: pd.Series, problems: _Problems) -> None:
    bad: dict[str, str] = {}
    for text in configs.unique():
        if not text:
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            bad[text] = "not JSON"
            continue
        if not isinstance(parsed, dict):
            bad[text] = "JSON that is not an object"
        elif canonical_config(parsed) != text:
            bad[text] = f"non-canonical JSON (canonical: {canonical_config(parsed)})"
    mask = configs.isin(list(bad))
    expected = "canonical JSON of an object (sorted keys, no spaces)"
    problems.where(
        mask, "config", expected, lambda i: f"{configs.iloc[i]!r}: {bad[configs.iloc[i]]}"
    )


def _check_settings(settings: pd.Series, problems: _Problems) -> None:
    bad = set()
    for text in settings.unique():
        if not text:
            continue
        names = [part.split("=", 1)[0] for part in text.split(",")]
        if not _SETTING.fullmatch(text) or len(set(names)) != len(names):
            bad.add(text)
    mask = settings.isin(list(bad))
    expected = "'name=value,...' with distinct names (SystemSetting.label())"
    problems.where(mask, "setting", expected, lambda i: repr(settings.iloc[i]))


def _numbers(
    values: pd.Series,
    name: str,
    problems: _Problems,
    expected: str,
    *,
    integer: bool = False,
    nullable: bool = False,
    hi: float | None = None,
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        null = numbers.isna()
    else:
        values = values.astype(object)
        numbers = values.map(_to_float).astype("float64")
        null = values.map(_is_null).astype(bool)
        # A value that is there but is not a number: a text cell, a boolean, ...
        problems.where(~null & numbers.isna(), name, expected, lambda i: repr(values.iloc[i]))
    if not nullable:
        problems.where(null, name, expected, lambda i: "null/NaN")
    finite = np.isfinite(numbers)
    bad = numbers.notna() & ~finite
    if not nullable:
        bad |= finite & (numbers < (1 if integer else 0))
    if integer:
        bad |= finite & (numbers != np.floor(numbers))
    if hi is not None:
        bad |= finite & (numbers > hi)
    problems.where(bad, name, expected, lambda i: repr(numbers.iloc[i]))
    if integer:
        return numbers.where(finite & ~bad, 1)
    return numbers.where(~bad, 0.0)


def _to_float(value: Any) -> float:
    """A number from a Parquet cell or CSV text (exact round trip of repr), else NaN."""
    if isinstance(value, bool | np.bool_):
        return math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _booleans(values: pd.Series, problems: _Problems) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    values = values.astype(object)

    def parse(v: Any) -> bool | None:
        if isinstance(v, bool | np.bool_):
            return bool(v)
        if isinstance(v, str):
            return _TRUE.get(v.strip().lower())
        return None

    parsed = values.map(parse)
    problems.where(
        parsed.isna(), "synthetic", "a boolean (true/false)", lambda i: _show(values.iloc[i])
    )
    return parsed.fillna(False).astype(bool)


def _profiles(values: pd.Series, problems: _Problems) -> pd.Series:
    values = values.astype(object)
    texts = values.map(lambda v: None if _is_null(v) or v == "" else v)
    reasons: dict[Any, str] = {}
    for text in texts.dropna().unique():
        if not isinstance(text, str):
            reasons[text] = f"{text!r} (not text)"
            continue
        try:
            JobProfile.from_dict(json.loads(text))
        except (ValueError, TypeError, AttributeError, ProfileError) as exc:
            reasons[text] = f"{text[:60]!r} ({str(exc).splitlines()[0]})"
    mask = texts.map(lambda t: t is not None and t in reasons)
    expected = "null or a JobProfile as JSON"
    problems.where(mask, "profile", expected, lambda i: reasons[texts.iloc[i]])
    return texts.astype(object).where(~mask, None)


def _check_groups(frame: pd.DataFrame, problems: _Problems) -> None:
    """Keys unique, epochs 1..n per group, one start-up per group, profiles on epoch 1 only."""
    first_at = frame.reset_index().groupby(list(KEY), sort=False)["index"].transform("first")
    dup = frame.duplicated(list(KEY), keep="first")
    problems.where(
        dup,
        "epoch",
        "a unique (workload, config, setting, epoch)",
        lambda i: f"a duplicate of row {int(first_at.iloc[i]) + 1}",
    )
    groups = frame.reset_index().groupby(["workload", "config", "setting"], sort=False)
    stats = groups.agg(
        first=("index", "min"),
        n=("epoch", "nunique"),
        top=("epoch", "max"),
        startups=("startup_s", "nunique"),
    )
    gaps, startups = stats["top"] != stats["n"], stats["startups"] > 1
    stats = stats[gaps | startups]
    problems.total += int(gaps[gaps | startups].iloc[MAX_PROBLEMS:].sum())
    problems.total += int(startups[gaps | startups].iloc[MAX_PROBLEMS:].sum())
    for (w, c, s), row in stats.head(MAX_PROBLEMS).iterrows():
        where = int(row["first"]) + 1
        if row["top"] != row["n"]:
            epochs = sorted(set(groups.get_group((w, c, s))["epoch"]))
            shown = ", ".join(map(str, epochs[:12])) + (", ..." if len(epochs) > 12 else "")
            problems.add(
                TraceProblem(
                    where,
                    "epoch",
                    f"epochs 1..{int(row['top'])} without gaps for ({w}, {c}, {s})",
                    f"epochs [{shown}]",
                )
            )
        if row["startups"] > 1:
            problems.add(
                TraceProblem(
                    where,
                    "startup_s",
                    f"one start-up value on every row of ({w}, {c}, {s})",
                    f"{int(row['startups'])} different values",
                )
            )
    profiled = frame["profile"].notna()
    problems.where(
        profiled & (frame["epoch"] != 1),
        "profile",
        "null (profiles go on epoch-1 rows only)",
        lambda i: "a profile",
    )
    first_profile = frame["profile"].where(profiled).groupby(frame["workload"]).transform("first")
    problems.where(
        profiled & (frame["profile"] != first_profile),
        "profile",
        "the same profile on every row of the workload",
        lambda i: "a different profile",
    )


# -- readers and writers -----------------------------------------------------------------------


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv"
    raise TraceError(f"{path}: expected a .parquet or .csv.gz trace file")


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    found = (table.schema.metadata or {}).get(PARQUET_VERSION_KEY)
    if found != VERSION.encode():
        shown = "no version" if found is None else repr(found.decode(errors="replace"))
        expected = f"schema metadata {PARQUET_VERSION_KEY.decode()} = {VERSION!r}"
        raise TraceError("unsupported trace", [TraceProblem(None, None, expected, shown)])
    return table.to_pandas()


def _read_csv(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        first = fh.readline().rstrip("\r\n")
        if first.strip() != CSV_VERSION_LINE:
            problem = TraceProblem(None, None, f"a first line {CSV_VERSION_LINE!r}", repr(first))
            raise TraceError("unsupported trace", [problem])
        # Only the first line is a comment: JSON cells may contain '#', so no `comment=`.
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)
    return frame.replace("", None)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            *(pa.field(n, pa.string(), nullable=False) for n in ("workload", "config", "setting")),
            pa.field("epoch", pa.int64(), nullable=False),
            *(pa.field(n, pa.float64(), nullable=False) for n in ("duration_s", "eval_s")),
            pa.field("energy_j", pa.float64(), nullable=False),
            pa.field("energy_source", pa.string(), nullable=False),
            pa.field("accuracy", pa.float64(), nullable=False),
            pa.field("loss", pa.float64()),
            pa.field("samples", pa.int64(), nullable=False),
            pa.field("startup_s", pa.float64(), nullable=False),
            pa.field("profile", pa.string()),
            pa.field("synthetic", pa.bool_(), nullable=False),
        ],
        metadata={PARQUET_VERSION_KEY: VERSION.encode()},
    )
    arrays = []
    for field in schema:
        values = frame[field.name]
        if pa.types.is_string(field.type):
            arrays.append(pa.array(values.to_numpy(dtype=object), field.type, from_pandas=True))
        else:
            arrays.append(pa.array(values.to_numpy(), type=field.type, from_pandas=True))
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with (
        gzip.GzipFile(path, "wb", mtime=0) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh,
    ):
        fh.write(CSV_VERSION_LINE + "\n")
        frame.to_csv(fh, index=False, lineterminator="\n")
