"""The store interface: write points, query them back by measurement, exact tags and window."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Point:
    """One time-series point: a measurement, exact-match tags, numeric/str fields, a time (ns)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time_ns: int = field(default=0)


class Store(ABC):
    @abstractmethod
    def write(self, points: list[Point]) -> None:
        """Persist points (batched by the caller)."""

    @abstractmethod
    def query(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Point]:
        """Points of one measurement whose tags equal `tags` exactly, in [start, end], by time."""

    def close(self) -> None:  # noqa: B027 - optional
        """Flush and release resources."""


class NullStore(Store):
    """`"metrics": {"store": "none"}`: the run directory's files are the only record."""

    def write(self, points: list[Point]) -> None:
        return None

    def query(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Point]:
        return []
