"""A durable local spool: points that could not reach the metrics server wait here, in order.

One SQLite file. Every `append`, `remove` and `reject` is one transaction, committed with
`synchronous = FULL` (fsynced) before it returns, so a crash at any moment leaves either the
old or the new state, never a torn one. Points leave the spool only after the caller says the
server acknowledged them (`remove`), or moved to the `rejected` table when the server refused
them as invalid (`reject`), so they are kept for inspection but never retried.

Several processes may share a spool file; SQLite's locking keeps them apart. Two of them may
replay the same head at once: the server's overwrite rule makes that harmless.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipetune.store.base import Point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    point TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    point TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledPoint:
    id: int
    point: Point


class Spool:
    """An ordered, durable queue of points on disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)

    def append(self, points: list[Point]) -> None:
        """Add points at the tail; durable when this returns."""
        if not points:
            return
        rows = [(_encode(p),) for p in points]
        with self._transaction():
            self._db.executemany("INSERT INTO spooled (point) VALUES (?)", rows)

    def head(self, limit: int) -> list[SpooledPoint]:
        """The oldest `limit` points, oldest first."""
        rows = self._db.execute(
            "SELECT id, point FROM spooled ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [SpooledPoint(row_id, _decode(raw)) for row_id, raw in rows]

    def remove(self, batch: list[SpooledPoint]) -> None:
        """Forget points the server acknowledged."""
        with self._transaction():
            self._db.executemany("DELETE FROM spooled WHERE id = ?", [(s.id,) for s in batch])

    def reject(self, batch: list[SpooledPoint], reason: str) -> None:
        """Move points the server refused as invalid out of the queue, keeping them and why."""
        now = time.time_ns()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rejected (point, reason, rejected_ns) VALUES (?, ?, ?)",
                [(_encode(s.point), reason, now) for s in batch],
            )
            self._db.executemany("DELETE FROM spooled WHERE id = ?", [(s.id,) for s in batch])

    def empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM spooled LIMIT 1").fetchone() is None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spooled").fetchone()[0])

    def rejected_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _encode(p: Point) -> str:
    # allow_nan=False: callers spool normalized points (NaN already turned into None)
    return json.dumps(
        {"m": p.measurement, "t": p.tags, "f": p.fields, "ns": p.time_ns}, allow_nan=False
    )


def _decode(raw: str) -> Point:
    d = json.loads(raw)
    return Point(d["m"], d["t"], d["f"], d["ns"])
