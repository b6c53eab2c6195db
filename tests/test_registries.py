"""The meter and store registries cover their vocabularies, and build by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipetune.config_telemetry import MeterKind, StoreConfig, StoreKind
from pipetune.factory import AUTO_ORDER, STORES, build_store
from pipetune.store.base import NullStore
from pipetune.store.sqlite import SqliteStore
from pipetune.telemetry.meter import MeterUnavailable
from pipetune.telemetry.meters import METERS, create_meter


def test_every_meter_kind_but_auto_and_estimate_names_a_meter_of_that_source() -> None:
    assert set(METERS) == set(MeterKind) - {MeterKind.AUTO, MeterKind.ESTIMATE}
    assert all(cls.source == kind for kind, cls in METERS.items())
    assert set(AUTO_ORDER) <= set(METERS)


def test_auto_and_estimate_are_no_meter() -> None:
    for name in ("auto", "estimate"):
        with pytest.raises(MeterUnavailable, match=f"unknown meter '{name}'"):
            create_meter(name)


def test_every_store_kind_has_a_builder(tmp_path: Path) -> None:
    assert set(STORES) == set(StoreKind)
    assert isinstance(build_store(StoreConfig(StoreKind.NONE)), NullStore)
    store = build_store(StoreConfig(StoreKind.SQLITE, tmp_path / "m.sqlite"))
    try:
        assert isinstance(store, SqliteStore) and (tmp_path / "m.sqlite").exists()
    finally:
        store.close()


def test_a_store_without_its_path_is_refused() -> None:
    with pytest.raises(ValueError, match="a sqlite store needs a path"):
        build_store(StoreConfig(StoreKind.SQLITE))


def test_the_meter_interface_does_not_import_the_meters() -> None:
    """The registry is filled where it is written, not by importing the interface."""
    code = (
        "import sys, pipetune.telemetry.meter; "
        "print(sorted(m for m in sys.modules if m.startswith('pipetune.telemetry.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['pipetune.telemetry.integrate', 'pipetune.telemetry.meter']"
