"""Validation of a trace table: every problem at once (up to a cap), then a normalised frame.

`validated` checks each column's values, then the rules that span rows (unique keys, epochs
1..n per group, one start-up per group, one profile and one `live` per workload); `upgraded`
brings a v2 table to v3 first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipetune.replay.trace_format import (
    COLUMNS,
    KEY,
    MAX_PROBLEMS,
    NON_NEGATIVE,
    PER_GROUP,
    STRINGS,
    V2_COLUMNS,
    V3_ONLY,
    VERSION,
    TraceError,
    TraceProblem,
    canonical_config,
)
from pipetune.telemetry.profile import JobProfile, ProfileError

_SETTING = re.compile(r"[^=,]+=[^=,]*(,[^=,]+=[^=,]*)*")
_LIVE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_TRUE = {"true": True, "1": True, "false": False, "0": False}


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


def upgraded(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """A frame read from a file of `version`, as v3: a v2 file gets the v3 columns' defaults."""
    if version == VERSION:
        return frame
    problems = _Problems()
    _check_columns(frame, V2_COLUMNS, version, problems)
    problems.raise_if_any()
    return frame.assign(**V3_ONLY)


def validated(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` normalised (columns in `COLUMNS` order, fixed dtypes); a `TraceError` with every
    problem found (up to a cap) when it breaks the format."""
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
    _check_unique_keys(frame, problems)
    _check_each_group(frame, problems)
    _check_each_workload(frame, problems)


def _check_unique_keys(frame: pd.DataFrame, problems: _Problems) -> None:
    first_at = frame.reset_index().groupby(list(KEY), sort=False)["index"].transform("first")
    dup = frame.duplicated(list(KEY), keep="first")
    problems.where(
        dup,
        "epoch",
        "a unique (workload, config, setting, epoch)",
        lambda i: f"a duplicate of row {int(first_at.iloc[i]) + 1}",
    )


def _check_each_group(frame: pd.DataFrame, problems: _Problems) -> None:
    """Epochs 1..n without gaps, and one value of each `PER_GROUP` column, per group; one
    problem per rule broken, at the group's first row."""
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


def _check_each_workload(frame: pd.DataFrame, problems: _Problems) -> None:
    """Profiles on epoch-1 rows only, and one profile and one `live` per workload."""
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
