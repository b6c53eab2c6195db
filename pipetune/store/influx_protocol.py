"""What InfluxDB 1.x accepts and answers, as pure functions: point checks, line protocol,
InfluxQL quoting, the query the store sends and the decoding of its answer (influx.py sends
and receives).

Field types. InfluxDB fixes a field's type per shard (a week by default): once `accuracy` was
written as a float, an int `accuracy=1` is a field type conflict, so write floats as floats
(`float(x)`). Types read back as InfluxDB stored them: an int stays an int, and a float stays
a float even when integral (`2.0`; the JSON answer says `2`, the field's declared type fixes
it). A NaN, infinite or None field is not stored (InfluxDB has no null); instead the boolean
field `_null.<name>` is written, so it reads back as None, as in the SQLite store (and a
point with no fields at all is stored as `_null.=true`). Field keys starting with `_null.` are
reserved. Because InfluxDB merges a rewritten point field by field, this keeps the merge rule
of `Store` exactly: a later null never erases a stored value.

InfluxDB cannot store some names: empty tag values, a newline anywhere in a name, a backslash
at the end of a name or before a space, comma or '=', the key `time`, integers beyond 64
bits. `check_points` names every such problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

from pipetune.store.base import Point

NULL_PREFIX = "_null."  # `_null.loss=true`: loss was NaN or None
_MIN_TIME_NS, _MAX_TIME_NS = -9223372036854775806, 9223372036854775806
_INT64 = (-(2**63), 2**63 - 1)
_BAD_BACKSLASH = re.compile(r"\\(?=[ ,=]|$)")


# ---------------------------------------------------------------------- validation, encoding


def check_points(points: list[Point]) -> tuple[list[Point], list[str]]:
    """Normalized copies (NaN → None, tag values as str), and every problem found."""
    problems: list[str] = []
    checked = []
    for i, p in enumerate(points):
        where = f"points[{i}] ({p.measurement!r})"
        found: list[str] = []
        _check_name(found, "measurement", p.measurement)
        if isinstance(p.measurement, str) and p.measurement.startswith("#"):
            found.append("measurement: cannot start with '#'")
        tags = {k: str(v) for k, v in p.tags.items()}
        for key, value in tags.items():
            _check_name(found, "tag key", key)
            _check_name(found, f"tag {key!r} value", value)
        fields: dict[str, Any] = {}
        for key, value in p.fields.items():
            _check_name(found, "field key", key)
            if key.startswith(NULL_PREFIX) or key in tags:
                found.append(f"field key {key!r}: reserved or also used as a tag")
            fields[key] = _field_value(found, key, value)
        if isinstance(p.time_ns, bool) or not isinstance(p.time_ns, int):
            found.append(f"time_ns: expected an int, found {p.time_ns!r}")
        elif not _MIN_TIME_NS <= p.time_ns <= _MAX_TIME_NS:
            found.append(f"time_ns {p.time_ns} is outside InfluxDB's range")
        problems += [f"{where}: {f}" for f in found]
        checked.append(Point(p.measurement, tags, fields, p.time_ns))
    return checked, problems


def _check_name(found: list[str], what: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        found.append(f"{what}: expected a non-empty string, found {name!r}")
    elif "\n" in name or "\r" in name:
        found.append(f"{what} {name!r}: contains a line break")
    elif _BAD_BACKSLASH.search(name):
        found.append(f"{what} {name!r}: a backslash at the end or before ' ', ',' or '='")
    elif name == "time":
        found.append(f"{what}: 'time' is reserved by InfluxDB")


def _field_value(found: list[str], key: str, value: object) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Integral):
        if not _INT64[0] <= int(value) <= _INT64[1]:
            found.append(f"field {key!r}: {value} does not fit in InfluxDB's 64-bit integer")
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    found.append(f"field {key!r}: unsupported type {type(value).__name__} ({value!r})")
    return None


def to_line(p: Point) -> str:
    """One line of line protocol for a checked point."""
    head = p.measurement.replace(",", r"\,").replace(" ", r"\ ")
    for key in sorted(p.tags):
        head += f",{_escape(key)}={_escape(p.tags[key])}"
    fields = [f"{_escape(k)}={_value(v)}" for k, v in sorted(p.fields.items()) if v is not None]
    fields += [f"{_escape(NULL_PREFIX + k)}=true" for k, v in sorted(p.fields.items()) if v is None]
    if not p.fields:
        fields.append(f"{_escape(NULL_PREFIX)}=true")
    return f"{head} {','.join(fields)} {p.time_ns}"


def _escape(name: str) -> str:
    return name.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def ident(name: str) -> str:
    """An InfluxQL identifier: double quotes, with backslash and double quote escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL string literal: single quotes, with backslash and single quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def server_message(e: Any) -> str:
    content = getattr(e, "content", e)
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip()


# ---------------------------------------------------------------------- decoding


def select_statement(
    measurement: str,
    tags: dict[str, str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> str | None:
    """The InfluxQL that reads `measurement`'s points with exactly these tags, in the window
    (inclusive, ns), and its field types; None when nothing can match."""
    wanted = {k: str(v) for k, v in (tags or {}).items()}
    if any(v == "" for v in wanted.values()):
        return None  # InfluxDB stores no empty tag value
    conditions = [f"{ident(k)}::tag = {literal(v)}" for k, v in sorted(wanted.items())]
    if start_ns is not None:
        conditions.append(f"time >= {int(start_ns)}")
    if end_ns is not None:
        conditions.append(f"time <= {int(end_ns)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    source = ident(measurement)
    return f"SELECT *::field FROM {source}{where} GROUP BY *; SHOW FIELD KEYS FROM {source}"


def decode_points(measurement: str, results: list[dict[str, Any]]) -> list[Point]:
    """The points of a `select_statement` answer, oldest first, typed as InfluxDB stored them."""
    types: dict[str, set[str]] = {}
    for result in results:
        if result.get("statement_id") == 1:
            for series in result.get("series", []):
                for key, kind in series["values"]:
                    types.setdefault(key, set()).add(kind)
    floats = {k for k, kinds in types.items() if kinds == {"float"}}
    points = [
        point
        for result in results
        if result.get("statement_id") == 0
        for series in result.get("series", [])
        for point in _series_points(measurement, series, floats)
    ]
    points.sort(key=lambda p: p.time_ns)  # stable: series order breaks ties
    return points


def _series_points(measurement: str, series: dict[str, Any], floats: set[str]) -> Iterator[Point]:
    tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
    columns = series["columns"]
    for row in series.get("values", []):
        fields: dict[str, Any] = {}
        nulls: list[str] = []
        time_ns = 0
        for column, value in zip(columns, row, strict=True):
            if column == "time":
                time_ns = int(value)
            elif column.startswith(NULL_PREFIX):
                if value is True and column != NULL_PREFIX:
                    nulls.append(column[len(NULL_PREFIX) :])
            elif value is not None:
                is_int = isinstance(value, int) and not isinstance(value, bool)
                fields[column] = float(value) if is_int and column in floats else value
        for name in nulls:
            fields.setdefault(name, None)
        yield Point(measurement, dict(tags), fields, time_ns)
