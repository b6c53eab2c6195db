"""The one store contract (tests/store_contract.py), run over SQLite and a real `influxd`.

Without `influxd` on PATH the InfluxDB half fails under CI=true and is skipped elsewhere.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipetune.store.base import Store
from pipetune.store.credentials import ANONYMOUS
from pipetune.store.influx import InfluxStore
from pipetune.store.sqlite import SqliteStore
from tests.influxd import Influxd, require_influxd
from tests.store_contract import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> Callable[[], Store]:
        return lambda: SqliteStore(tmp_path / "metrics.sqlite")


@pytest.fixture(scope="module")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    require_influxd()
    with Influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


class TestInfluxStore(StoreContract):
    @pytest.fixture
    def open_store(self, influxd: Influxd, tmp_path: Path) -> Callable[[], Store]:
        database = f"contract_{uuid.uuid4().hex[:12]}"  # a fresh database per test
        return lambda: InfluxStore(
            "127.0.0.1", influxd.port, database, ANONYMOUS, tmp_path / "spool.sqlite"
        )


def test_sqlite_file_with_duplicate_points_is_deduplicated_on_open(tmp_path: Path) -> None:
    """A file written before points had an identity keeps one copy (the latest) of each."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE points (measurement TEXT NOT NULL, time_ns INTEGER NOT NULL,
                             tags TEXT NOT NULL, fields TEXT NOT NULL);
        CREATE INDEX points_by_measurement_time ON points (measurement, time_ns);
        """
    )
    tags = json.dumps({"k": "v"})
    db.executemany(
        "INSERT INTO points VALUES (?, ?, ?, ?)",
        [("m", 1, tags, '{"i": 1}'), ("m", 1, tags, '{"i": 2}'), ("m", 2, tags, '{"i": 3}')],
    )
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert [(p.time_ns, p.fields) for p in store.query("m")] == [(1, {"i": 2}), (2, {"i": 3})]
    store.close()
