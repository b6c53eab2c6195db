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


@dataclass(frozen=True)
class StoreStatus:
    """What `pipetune doctor` shows about a store: can it be reached, and what is pending."""

    kind: str
    location: str
    reachable: bool
    version: str | None = None
    buffered: int = 0  # points held in memory, not yet sent
    spooled: int = 0  # points waiting in the local spool for the server to come back
    rejected: int = 0  # points the server refused, kept in the spool for inspection
    detail: str = ""


class Store(ABC):
    """A time-series store. Identity of a point: measurement + tags + time_ns.

    Writing a point with the same identity again merges it into the stored one: its non-null
    fields replace the stored values (this is InfluxDB's rule; it makes replays idempotent).
    A NaN, infinite or None field reads back as None.
    """

    @abstractmethod
    def write(self, points: list[Point]) -> None:
        """Persist points; a store may buffer them until `flush()` or `close()`."""

    @abstractmethod
    def query(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Point]:
        """Points of one measurement whose tags equal `tags` exactly, in [start, end], by time."""

    def flush(self) -> None:  # noqa: B027 - optional
        """Send buffered points now; called before reads and by `close()`."""

    def status(self) -> StoreStatus:
        """Reachability, version and pending points, for `pipetune doctor`."""
        return StoreStatus(kind=type(self).__name__, location="", reachable=True)

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

    def status(self) -> StoreStatus:
        return StoreStatus(kind="none", location="", reachable=True)
