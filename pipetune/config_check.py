"""Validation helpers: a problem collector whose typed getters name the JSON path, the
expectation and what was found. Imports only `errors`."""

from __future__ import annotations

import enum
import json
import re
from typing import Any, TypeVar

from pipetune.errors import ConfigError, Problem

E = TypeVar("E", bound=enum.StrEnum)

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)


def normalise_memory(value: str) -> str:
    """'2' → '2g' (the original's GB convention), '512m' → '512m'."""
    m = _MEMORY.match(value.strip())
    if not m:
        raise ValueError(value)
    number, unit = m.groups()
    return f"{number}{(unit or 'g').lower()}"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Collects problems; each typed getter records one and returns a harmless fallback."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def error(self) -> ConfigError:
        return ConfigError(self.problems, self.source)

    def problem(self, path: str, expected: str, found: str) -> None:
        self.problems.append(Problem(path, expected, found))

    def unknown_keys(self, path: str, raw: dict[str, Any], known: set[str]) -> None:
        for key in raw:
            if key not in known:
                self.problem(
                    f"{path}.{key}",
                    f"one of the known keys {sorted(known)}",
                    f'unknown key "{key}"',
                )

    def string(self, path: str, value: Any) -> str:
        if isinstance(value, str) and value:
            return value
        self.problem(path, "a non-empty string", show(value))
        return ""

    def choice(self, path: str, value: Any, vocabulary: type[E]) -> E:
        """The member of a closed vocabulary named `value`; the first member if none is."""
        names = [member.value for member in vocabulary]
        if isinstance(value, str) and value in names:
            return vocabulary(value)
        self.problem(path, f"one of {names}", show(value))
        return next(iter(vocabulary))

    def boolean(self, path: str, value: Any, fallback: bool) -> bool:
        if isinstance(value, bool):
            return value
        self.problem(path, "true or false", show(value))
        return fallback

    def integer(self, path: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.problem(path, "a whole number", show(value))
        return 0

    def positive_int(self, path: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.problem(path, "a whole number ≥ 1", show(value))
        return 1

    def memory(self, path: str, value: Any) -> str:
        try:
            return (
                normalise_memory(str(value))
                if isinstance(value, (str, int))
                else normalise_memory("")
            )
        except ValueError:
            self.problem(path, 'a memory size such as "2g" or "512m"', show(value))
            return "1g"

    def mapping(self, path: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return dict(value)
        self.problem(path, "an object", show(value))
        return {}

    def flag_map(self, path: str, value: Any) -> dict[str, str]:
        raw = self.mapping(path, value)
        flags = {}
        for key, flag in raw.items():
            if isinstance(flag, str) and flag.strip("-"):
                flags[key] = flag.lstrip("-")
            else:
                self.problem(f"{path}.{key}", "the app flag name (a string)", show(flag))
        return flags
