"""`power` has one definition: a collector's points and the tuner's points carry the same tags
and fields, and the same node, source and domain for the same meter on the same host."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pytest

from monitoring import options, rapl_power
from pipetune.store import schema, schema_power
from pipetune.store.base import Point
from tests.test_telemetry_rapl import DRAM_RANGE, PKG_RANGE, set_uj, zone


def collector_point(tmp_path: Path) -> Point:
    """One interval of the RAPL collector over a package with a DRAM zone."""
    root = tmp_path / "powercap"
    zone(root / "intel-rapl:0", "package-0", 1_000_000, PKG_RANGE)
    zone(root / "intel-rapl:0" / "intel-rapl:0:0", "dram", 1_000_000, DRAM_RANGE)
    (root / "intel-rapl:0:0").symlink_to(root / "intel-rapl:0" / "intel-rapl:0:0")
    args = argparse.Namespace(node=options.default_node(), root=root, interval=1.0, recycle=0)
    collector = rapl_power.build(args)
    collector.start()
    time.sleep(0.02)
    set_uj(root, "intel-rapl:0", 3_000_000)
    points = collector.collect()
    collector.stop()
    assert len(points) == 1
    return points[0]


def test_collector_and_tuner_write_the_same_power_schema(tmp_path: Path) -> None:
    collected = collector_point(tmp_path)
    (tuned,) = schema.power_points("run-1", "t0", [(time.time(), 42.0, "rapl")])

    assert collected.measurement == tuned.measurement == schema_power.POWER
    assert set(collected.tags) == set(schema_power.POWER_TAGS)
    assert set(tuned.tags) == set(schema_power.POWER_TAGS) | set(schema_power.RUN_TAGS)
    assert set(collected.fields) == set(schema_power.POWER_FIELDS)
    assert set(tuned.fields) == {schema_power.WATTS}  # the segment point has its energy
    same_series = {k: collected.tags[k] for k in schema_power.POWER_TAGS}
    assert same_series == {k: tuned.tags[k] for k in schema_power.POWER_TAGS}
    assert same_series["domain"] == "package+dram"
    assert (tuned.tags["run"], tuned.tags["trial"]) == ("run-1", "t0")


def test_run_and_trial_go_together() -> None:
    with pytest.raises(ValueError, match="tag trial: expected a non-empty string"):
        schema_power.power_point("n1", "rapl", "package", 1.0, 7, run="run-1")


def test_the_tuner_leaves_out_a_sample_the_schema_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = [(1.0, 10.0, "estimate"), (2.0, float("nan"), "estimate")]
    with caplog.at_level(logging.WARNING):
        points = schema.power_points("run-1", "t0", samples)
    assert [p.fields["watts"] for p in points] == [10.0]
    assert points[0].tags["domain"] == "job" and points[0].time_ns == 1_000_000_000
    assert "field watts: expected a finite number" in caplog.text
