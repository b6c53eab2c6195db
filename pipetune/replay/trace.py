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

VERSION = "3"
# v2 files are still read: they lack the v3 columns, which get these values (v2 traces predate
# live switching: every parameter change was a restart, and no app reported a steady pace).
V2 = "2"
V3_ONLY: dict[str, Any] = {"steady_s": math.nan, "switch_s": 0.0, "live": ""}
PARQUET_VERSION_KEY = b"pipetune.trace.version"
CSV_VERSION_LINE = f"# pipetune-trace v{VERSION}"
CSV_V2_LINE = f"# pipetune-trace v{V2}"
MAX_PROBLEMS = 20

KEY = ("workload", "config", "setting", "epoch")
STRINGS = ("workload", "config", "setting", "energy_source")
NON_NEGATIVE = ("duration_s", "eval_s", "energy_j", "startup_s", "switch_s")
PER_GROUP = {"startup_s": "one start-up value", "switch_s": "one live-switch value"}
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
    "live",
    "profile",
    "synthetic",
)
V2_COLUMNS = tuple(c for c in COLUMNS if c not in V3_ONLY)
_SETTING = re.compile(r"[^=,]+=[^=,]*(,[^=,]+=[^=,]*)*")
_LIVE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
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
        self._live: dict[str, frozenset[str]] = {}
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
            frame, version = _read_parquet(p) if kind == "parquet" else _read_csv(p)
            frame = _upgraded(frame, version)
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

    def switch_s(
        self, workload: str, config: str | Mapping[str, Any], setting: str | SystemSetting
    ) -> float | None:
        """The measured cost of a live switch into the group's setting; None: unknown group."""
        rows = self.epochs(workload, config, setting)
        return rows[0].switch_s if rows else None

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
        for w, c, s, e, dur, ev, en, src, acc, loss, st, n, steady, sw in zip(*cols, strict=True):
            row = TraceRow(
                e,
                dur,
                ev,
                en,
                src,
                acc,
                None if math.isnan(loss) else loss,
                st,
                n,
                steady_s=None if math.isnan(steady) else steady,
                switch_s=sw,
            )
            self._groups.setdefault((w, c, s), []).append(row)
        for rows in self._groups.values():
            rows.sort(key=lambda r: r.epoch)
        with_profile = f[f["profile"].notna()]
        for w, text in zip(with_profile["workload"], with_profile["profile"], strict=True):
            if w not in self._profiles:
                self._profiles[w] = JobProfile.from_dict(json.loads(text))
        for w, text in f.groupby("workload", sort=False)["live"].first().items():
            self._live[str(w)] = frozenset(text.split(",")) if text else frozenset()


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


def _check_columns(
    frame: pd.DataFrame, columns: tuple[str, ...], version: str, problems: _Problems
) -> None:
    for name in columns:
        if name not in frame.columns:
            problems.add(TraceProblem(None, name, "this column", "no such column"))
    for name in frame.columns:
        if name not in columns:
            found = f"a column of v{VERSION}" if name in COLUMNS else "an unknown column"
            problems.add(TraceProblem(None, str(name), f"only the columns of v{version}", found))


def _upgraded(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """A frame read from a file of `version`, as v3: a v2 file gets the v3 columns' defaults."""
    if version == VERSION:
        return frame
    problems = _Problems()
    _check_columns(frame, V2_COLUMNS, version, problems)
    problems.raise_if_any()
    return frame.assign(**V3_ONLY)


def _validated(frame: pd.DataFrame) -> pd.DataFrame:
    problems = _Problems()
    _check_columns(frame, COLUMNS, VERSION, problems)
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
    out["loss"] = _numbers(
        raw["loss"], "loss", problems, "a finite number or null", nullable=True, lo=None
    )
    out["steady_s"] = _numbers(
        raw["steady_s"], "steady_s", problems, "a finite number >= 0 or null", nullable=True
    )
    out["samples"] = _numbers(raw["samples"], "samples", problems, "an integer >= 1", integer=True)
    out["live"] = _live(raw["live"], problems)
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
    lo: float | None = 0.0,
    hi: float | None = None,
) -> pd.Series:
    """Numbers (float64, NaN for null) in [`lo` (1 for integers), `hi`]; problems for the rest."""
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
    if integer:
        lo = 1
    if lo is not None:
        bad |= finite & (numbers < lo)
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


def _live(values: pd.Series, problems: _Problems) -> pd.Series:
    """`live` cells: '' (null too) or sorted, distinct names joined by ','."""
    values = values.astype(object).map(lambda v: "" if _is_null(v) else v)

    def ok(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        if v == "":
            return True
        names = v.split(",")
        return all(_LIVE_NAME.fullmatch(n) for n in names) and names == sorted(set(names))

    good = values.map(ok).astype(bool)
    expected = "'' or sorted, distinct names ([A-Za-z0-9_.-]+) joined by ','"
    problems.where(~good, "live", expected, lambda i: repr(values.iloc[i]))
    return values.where(good, "")


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
    """Keys unique, epochs 1..n per group, one start-up and one live switch per group, profiles
    on epoch 1 only, one profile and one `live` per workload."""
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
        **{name: (name, "nunique") for name in PER_GROUP},
    )
    gaps = stats["top"] != stats["n"]
    differ = {name: stats[name] > 1 for name in PER_GROUP}
    flagged = gaps.copy()
    for mask in differ.values():
        flagged |= mask
    stats = stats[flagged]
    for mask in (gaps, *differ.values()):
        problems.total += int(mask[flagged].iloc[MAX_PROBLEMS:].sum())
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
        for name, what in PER_GROUP.items():
            if row[name] > 1:
                problems.add(
                    TraceProblem(
                        where,
                        name,
                        f"{what} on every row of ({w}, {c}, {s})",
                        f"{int(row[name])} different values",
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
    by_workload = frame.reset_index().groupby("workload", sort=False)
    first_row = by_workload["index"].transform("first")
    first_live = by_workload["live"].transform("first")
    problems.where(
        frame["live"] != first_live,
        "live",
        "the same live parameters on every row of the workload",
        lambda i: (
            f"{frame['live'].iloc[i]!r} (row {int(first_row.iloc[i]) + 1} has "
            f"{first_live.iloc[i]!r})"
        ),
    )


# -- readers and writers -----------------------------------------------------------------------


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv"
    raise TraceError(f"{path}: expected a .parquet or .csv.gz trace file")


def _read_parquet(path: Path) -> tuple[pd.DataFrame, str]:
    """The table and its version (v3, or v2 to upgrade)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    found = (table.schema.metadata or {}).get(PARQUET_VERSION_KEY)
    if found not in (VERSION.encode(), V2.encode()):
        shown = "no version" if found is None else repr(found.decode(errors="replace"))
        expected = f"schema metadata {PARQUET_VERSION_KEY.decode()} = {VERSION!r} (or {V2!r})"
        raise TraceError("unsupported trace", [TraceProblem(None, None, expected, shown)])
    return table.to_pandas(), found.decode()


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    """The table (an empty cell is null) and its version (v3, or v2 to upgrade)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        first = fh.readline().rstrip("\r\n").strip()
        versions = {CSV_VERSION_LINE: VERSION, CSV_V2_LINE: V2}
        if first not in versions:
            expected = f"a first line {CSV_VERSION_LINE!r} (or {CSV_V2_LINE!r})"
            raise TraceError("unsupported trace", [TraceProblem(None, None, expected, repr(first))])
        # Only the first line is a comment: JSON cells may contain '#', so no `comment=`.
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)
    return frame.replace("", None), versions[first]


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
            pa.field("steady_s", pa.float64()),
            pa.field("samples", pa.int64(), nullable=False),
            pa.field("startup_s", pa.float64(), nullable=False),
            pa.field("switch_s", pa.float64(), nullable=False),
            pa.field("live", pa.string(), nullable=False),
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
