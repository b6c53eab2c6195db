"""Typed access to untrusted JSON: each bad field becomes a `Problem` (JSON path, expected,
found) and reading goes on, so that every problem can be reported at once."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pipetune.errors import Problem


class JsonReader:
    """Typed access to untrusted JSON that records a `Problem` per bad field and goes on."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, expected: str, found: str) -> None:
        self.problems.append(Problem(path, expected, found))

    def missing(self, path: str) -> None:
        self.bad(path, "a value", "nothing (key missing)")

    def key(self, d: Mapping[str, Any], name: str, kind: type, path: str) -> Any:
        if name not in d:
            self.missing(path)
            return None
        value = d[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.bad(path, _KINDS.get(kind, kind.__name__), show(value))
            return None
        return value

    def number(self, v: Any, path: str, positive: bool = False) -> float | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.bad(path, "a number", show(v))
            return None
        if not math.isfinite(v) or (positive and v <= 0):
            self.bad(path, "a finite number > 0" if positive else "a finite number", show(v))
            return None
        return float(v)

    def count(self, v: Any, path: str, minimum: int = 0) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.bad(path, f"an integer >= {minimum}", show(v))
            return None
        return v

    def index(self, v: Any, path: str, n: int) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < max(n, 1):
            self.bad(path, f"an observation index in [0, {n})", show(v))
            return None
        return v

    def strings(self, v: Any, path: str) -> list[str] | None:
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.bad(path, "a list of strings", show(v))
            return None
        return v

    def sized(self, d: Mapping[str, Any], name: str, length: int | None) -> list[Any]:
        v = d.get(name)
        if not isinstance(v, list) or (length is not None and len(v) != length):
            self.bad(f"model.{name}", _length(length, "values"), show(v))
            return []
        return v

    def vector(
        self, v: Any, path: str, length: int | None, positive: bool = False
    ) -> list[float] | None:
        if not isinstance(v, list) or (length is not None and len(v) != length):
            self.bad(path, _length(length, "numbers"), show(v))
            return None
        out = [self.number(x, f"{path}[{i}]", positive) for i, x in enumerate(v)]
        return None if None in out else [float(x or 0.0) for x in out]

    def matrix(
        self, v: Any, path: str, rows: int | None, cols: int | None
    ) -> list[list[float]] | None:
        if not isinstance(v, list) or (rows is not None and len(v) != rows):
            self.bad(path, _length(rows, "rows (one per cluster)"), show(v))
            return None
        out = [self.vector(row, f"{path}[{i}]", cols) for i, row in enumerate(v)]
        if cols is None and len({len(row) for row in out if row is not None}) > 1:
            self.bad(path, "rows of one width", "rows of different widths")
        return None if any(row is None for row in out) else out  # type: ignore[return-value]


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}


def _length(n: int | None, what: str) -> str:
    return f"a list of {n} {what}" if n is not None else f"a list of {what}"


def show(value: Any, limit: int = 60) -> str:
    if isinstance(value, list):
        text = f"a list of {len(value)}: {json.dumps(value, default=str)}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
