from __future__ import annotations

from pathlib import Path

from pipetune.store.base import Point
from pipetune.store.sqlite import SqliteStore


def test_write_and_query_with_exact_tags_and_window(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.sqlite")
    store.write(
        [
            Point("epoch", {"batch": "32"}, {"duration_s": 1.0}, 10),
            Point("epoch", {"batch": "320"}, {"duration_s": 2.0}, 20),
            Point("epoch", {"batch": "32"}, {"duration_s": float("nan")}, 30),
            Point("segment", {"batch": "32"}, {"wall_s": 9.0}, 15),
        ]
    )
    got = store.query("epoch", {"batch": "32"})
    assert [p.time_ns for p in got] == [10, 30]  # 32 never matches 320
    assert got[1].fields == {"duration_s": None}
    assert [p.time_ns for p in store.query("epoch", start_ns=15, end_ns=30)] == [20, 30]
    store.close()
    reopened = SqliteStore(tmp_path / "m.sqlite")
    assert len(reopened.query("epoch")) == 3
