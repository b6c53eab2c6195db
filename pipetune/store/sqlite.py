"""The embedded default store: one SQLite file, tags and fields kept as JSON."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from pipetune.store.base import Point, Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS points_by_measurement_time ON points (measurement, time_ns);
"""


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def write(self, points: list[Point]) -> None:
        rows = [
            (p.measurement, p.time_ns, _canonical(p.tags), json.dumps(_finite(p.fields)))
            for p in points
        ]
        with self._db:
            self._db.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", rows)

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

    def close(self) -> None:
        self._db.close()


def _canonical(tags: dict[str, str]) -> str:
    return json.dumps({k: str(v) for k, v in tags.items()}, sort_keys=True)


def _finite(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: an unknown value is stored as null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fields.items()
    }
