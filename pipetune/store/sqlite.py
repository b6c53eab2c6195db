"""The embedded default store: one SQLite file, tags and fields kept as JSON.

A point's identity is (measurement, tags, time_ns), enforced by a unique index; writing it
again merges fields the way InfluxDB does (see `Store`), so both stores read back the same.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from pipetune.store.base import Point, Store, StoreStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL
);
"""

# Files written before the identity index existed may hold duplicates: keep the latest copy.
_IDENTITY = """
BEGIN;
DELETE FROM points WHERE rowid NOT IN
    (SELECT max(rowid) FROM points GROUP BY measurement, time_ns, tags);
DROP INDEX IF EXISTS points_by_measurement_time;
CREATE UNIQUE INDEX points_identity ON points (measurement, time_ns, tags);
COMMIT;
"""

_UPSERT = """
INSERT INTO points VALUES (?, ?, ?, ?)
ON CONFLICT (measurement, time_ns, tags)
DO UPDATE SET fields = merge_fields(fields, excluded.fields)
"""


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.create_function("merge_fields", 2, _merge_fields, deterministic=True)
        self._db.executescript(_SCHEMA)
        has_identity = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'points_identity'"
        ).fetchone()
        if not has_identity:
            self._db.executescript(_IDENTITY)

    def write(self, points: list[Point]) -> None:
        rows = [
            (p.measurement, p.time_ns, _canonical(p.tags), json.dumps(_finite(p.fields)))
            for p in points
        ]
        with self._db:
            self._db.executemany(_UPSERT, rows)

    def query(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Point]:
        sql = "SELECT time_ns, tags, fields FROM points WHERE measurement = ?"
        args: list[Any] = [measurement]
        if start_ns is not None:
            sql += " AND time_ns >= ?"
            args.append(start_ns)
        if end_ns is not None:
            sql += " AND time_ns <= ?"
            args.append(end_ns)
        points = []
        for time_ns, raw_tags, raw_fields in self._db.execute(sql + " ORDER BY time_ns", args):
            point_tags = json.loads(raw_tags)
            # exact match on every requested tag: batch size 32 never matches 320
            if tags and any(point_tags.get(k) != str(v) for k, v in tags.items()):
                continue
            points.append(Point(measurement, point_tags, json.loads(raw_fields), time_ns))
        return points

    def status(self) -> StoreStatus:
        return StoreStatus(
            kind="sqlite", location=str(self.path), reachable=True, version=sqlite3.sqlite_version
        )

    def close(self) -> None:
        self._db.close()


def _canonical(tags: dict[str, str]) -> str:
    return json.dumps({k: str(v) for k, v in tags.items()}, sort_keys=True)


def _finite(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: an unknown value is stored as null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fields.items()
    }


def _merge_fields(stored: str, new: str) -> str:
    """InfluxDB's overwrite rule: the new point's non-null fields win, the others stay."""
    merged = json.loads(stored)
    for key, value in json.loads(new).items():
        if value is not None or key not in merged:
            merged[key] = value
    return json.dumps(merged)
