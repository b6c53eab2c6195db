"""Validation of a trace table: every problem at once (up to a cap), then a normalised frame.

`validated` checks each column's values, then the rules that span rows (trace_rules.py);
`upgraded` brings a table of an older version to the current one first.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from pipetune.replay.trace_format import (
    COLUMNS,
    NON_NEGATIVE,
    STRINGS,
    VERSION,
    TraceProblem,
    added_after,
    canonical_config,
    columns_of,
)
from pipetune.replay.trace_problems import Problems
from pipetune.replay.trace_rules import check_rules
from pipetune.telemetry.profile import JobProfile, ProfileError

_SETTING = re.compile(r"[^=,]+=[^=,]*(,[^=,]+=[^=,]*)*")
_LIVE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_TRUE = {"true": True, "1": True, "false": False, "0": False}


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _check_columns(
    frame: pd.DataFrame, columns: tuple[str, ...], version: str, problems: Problems
) -> None:
    for name in columns:
        if name not in frame.columns:
            problems.add(TraceProblem(None, name, "this column", "no such column"))
    for name in frame.columns:
        if name not in columns:
            found = f"a column of v{VERSION}" if name in COLUMNS else "an unknown column"
            problems.add(TraceProblem(None, str(name), f"only the columns of v{version}", found))


def upgraded(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """A frame read from a file of `version`, as the current version: the columns added since
    get their defaults (`trace_format.ADDED`)."""
    if version == VERSION:
        return frame
    problems = Problems()
    _check_columns(frame, columns_of(version), version, problems)
    problems.raise_if_any()
    return frame.assign(**added_after(version))


def validated(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` normalised (columns in `COLUMNS` order, fixed dtypes); a `TraceError` with every
    problem found (up to a cap) when it breaks the format."""
    problems = Problems()
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
    out.update(_reuse_figures(raw, problems))
    out["live"] = _live(raw["live"], problems)
    out["synthetic"] = _booleans(raw["synthetic"], problems)
    out["profile"] = _profiles(raw["profile"], problems)
    problems.raise_if_any()
    result = pd.DataFrame({name: out[name] for name in COLUMNS})
    result["epoch"] = result["epoch"].astype("int64")
    result["samples"] = result["samples"].astype("int64")
    result["profile"] = result["profile"].astype(object).where(result["profile"].notna(), None)
    check_rules(result, problems)
    problems.raise_if_any()
    return result


def _strings(values: pd.Series, name: str, problems: Problems) -> pd.Series:
    values = values.astype(object)
    ok = values.map(lambda v: isinstance(v, str) and v != "")
    problems.where(~ok, name, "a non-empty string", lambda i: _show(values.iloc[i]))
    return values.where(ok, "")


def _show(value: Any) -> str:
    return "null" if _is_null(value) else repr(value)


def _check_configs(configs: pd.Series, problems: Problems) -> None:
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


def _check_settings(settings: pd.Series, problems: Problems) -> None:
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
    problems: Problems,
    expected: str,
    *,
    integer: bool = False,
    nullable: bool = False,
    lo: float | None = 0.0,
    hi: float | None = None,
    above: bool = False,
) -> pd.Series:
    """Numbers (float64, NaN for null) in [`lo` (1 for integers), `hi`] (`above`: in (`lo`,
    `hi`]); problems for the rest."""
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
        bad |= finite & ((numbers <= lo) if above else (numbers < lo))
    if integer:
        bad |= finite & (numbers != np.floor(numbers))
    if hi is not None:
        bad |= finite & (numbers > hi)
    problems.where(bad, name, expected, lambda i: repr(numbers.iloc[i]))
    if integer:
        return numbers.where(finite & ~bad, 1)
    return numbers.where(~bad, 0.0)


def _reuse_figures(raw: dict[str, pd.Series], problems: Problems) -> dict[str, pd.Series]:
    """The reused process's start-up (>= 0) and first-epoch ratio (> 0), each may be null."""
    return {
        "reuse_startup_s": _numbers(
            raw["reuse_startup_s"], "reuse_startup_s", problems, "a finite number >= 0 or null",
            nullable=True,
        ),
        "reuse_epoch1_ratio": _numbers(
            raw["reuse_epoch1_ratio"], "reuse_epoch1_ratio", problems,
            "a finite number > 0 or null", nullable=True, above=True,
        ),
    }  # fmt: skip


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


def _booleans(values: pd.Series, problems: Problems) -> pd.Series:
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


def _live(values: pd.Series, problems: Problems) -> pd.Series:
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


def _profiles(values: pd.Series, problems: Problems) -> pd.Series:
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
