"""Trace files: round trips in both formats, versions, and validation that names row and column."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from pipetune.records import SystemSetting
from pipetune.replay import COLUMNS, Trace, TraceError, canonical_config, synthetic_trace
from pipetune.telemetry.profile import JobProfile

PROFILE = JobProfile({"task-clock": 900.0, "page-faults": 12.5}, "perf", 30.0)
CONFIG = canonical_config({"lr": 0.1, "batch_size": 64})
SETTINGS = [
    SystemSetting.of({"cores": 2, "memory": "2g"}),
    SystemSetting.of({"cores": 4, "memory": "2g"}),
]


def row(epoch: int, setting: str = "cores=2,memory=2g", **changes: Any) -> dict[str, Any]:
    base = {
        "workload": "lenet5",
        "config": CONFIG,
        "setting": setting,
        "epoch": epoch,
        "duration_s": 10.0 + epoch,
        "eval_s": 1.0,
        "energy_j": 500.0,
        "energy_source": "estimate",
        "accuracy": 0.5 + 0.1 * epoch,
        "loss": 1.0 / epoch,
        "steady_s": 9.0 + epoch,
        "samples": 6144,
        "startup_s": 20.0,
        "switch_s": 0.5,
        "live": "cores",
        "profile": json.dumps(PROFILE.to_dict()) if epoch == 1 else None,
        "synthetic": False,
    }
    return {**base, **changes}


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    rows = rows or tuple(row(e) for e in (1, 2, 3))
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def problems(data: pd.DataFrame) -> list[tuple[int | None, str | None]]:
    with pytest.raises(TraceError) as info:
        Trace(data)
    return [(p.row, p.column) for p in info.value.problems]


def test_queries_on_a_small_trace():
    trace = Trace(frame(row(1), row(2), row(1, "cores=4,memory=2g", startup_s=9.0)))
    assert trace.workloads() == ["lenet5"]
    assert trace.configs("lenet5") == [CONFIG]
    assert trace.settings("lenet5", {"batch_size": 64, "lr": 0.1}) == [
        "cores=2,memory=2g",
        "cores=4,memory=2g",
    ]
    rows = trace.epochs("lenet5", CONFIG, SETTINGS[0])
    assert [r.epoch for r in rows] == [1, 2]
    assert rows[1].loss == 0.5 and rows[0].wall_s == 12.0
    assert trace.startup_s("lenet5", CONFIG, "cores=4,memory=2g") == 9.0
    assert trace.startup_s("lenet5", CONFIG, "cores=8,memory=2g") is None
    assert trace.profile("lenet5") == PROFILE
    assert trace.profile("other") is None
    assert not trace.is_synthetic
    assert rows[0].steady_s == 10.0 and rows[0].switch_s == 0.5
    assert trace.switch_s("lenet5", CONFIG, SETTINGS[0]) == 0.5
    assert trace.switch_s("lenet5", CONFIG, "cores=8,memory=2g") is None
    assert trace.live("lenet5") == frozenset({"cores"})
    assert trace.live("other") == frozenset()


def test_live_lists_every_name_and_an_empty_live_is_none():
    two = Trace(frame(*(row(e, live="cores,memory") for e in (1, 2))))
    assert two.live("lenet5") == frozenset({"cores", "memory"})
    for empty in ("", None, np.nan):
        trace = Trace(frame(*(row(e, live=empty) for e in (1, 2))))
        assert trace.live("lenet5") == frozenset()
        assert trace.frame["live"].tolist() == ["", ""]


@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_round_trip_is_identical(tmp_path: Path, suffix: str):
    trace = synthetic_trace(2, 2, SETTINGS, 3, seed=1)
    # A null loss, and JSON with '#' and ',' in a config, must survive both formats.
    data = trace.frame
    data.loc[4, "loss"] = np.nan
    data["config"] = data["config"].str.replace(r"\}$", ',"zz":"a#b, c"}', regex=True)
    trace = Trace(data)
    trace.save(tmp_path / f"t{suffix}")
    loaded = Trace.load(tmp_path / f"t{suffix}")
    pdt.assert_frame_equal(loaded.frame, trace.frame, check_exact=True)
    assert loaded.is_synthetic
    assert loaded.epochs(*_first_group(loaded))[0].loss is not None
    assert not (tmp_path / f"t{suffix}.tmp").exists()


def test_parquet_and_csv_give_the_same_frame(tmp_path: Path):
    trace = Trace(frame(row(1), row(2, loss=None), row(3)))
    trace.save(tmp_path / "t.parquet")
    trace.save(tmp_path / "t.csv.gz")
    a, b = Trace.load(tmp_path / "t.parquet").frame, Trace.load(tmp_path / "t.csv.gz").frame
    pdt.assert_frame_equal(a, b, check_exact=True)
    assert a["profile"].tolist()[1:] == [None, None]


def test_v3_columns_round_trip_csv_and_parquet(tmp_path: Path):
    # A null steady_s and an empty live must come back as null and "" through both encodings.
    other = canonical_config({"lr": 0.2, "batch_size": 64})
    rows = [
        row(1, steady_s=None, switch_s=0.25),
        row(2, steady_s=11.5, switch_s=0.25),
        row(1, config=other, steady_s=7.125, switch_s=1.75),
        row(1, workload="resnet", live="", steady_s=None, switch_s=0.0),
    ]
    trace = Trace(frame(*rows))
    assert list(trace.frame.columns) == list(COLUMNS)
    trace.save(tmp_path / "a.csv.gz")
    from_csv = Trace.load(tmp_path / "a.csv.gz")
    from_csv.save(tmp_path / "b.parquet")
    from_parquet = Trace.load(tmp_path / "b.parquet")
    from_parquet.save(tmp_path / "c.csv.gz")
    again = Trace.load(tmp_path / "c.csv.gz")
    for loaded in (from_csv, from_parquet, again):
        pdt.assert_frame_equal(loaded.frame, trace.frame, check_exact=True)
        data = loaded.frame
        assert data["steady_s"].isna().tolist() == [True, False, False, True]
        assert data["steady_s"].iloc[1:3].tolist() == [11.5, 7.125]
        assert data["switch_s"].tolist() == [0.25, 0.25, 1.75, 0.0]
        assert data["live"].tolist() == ["cores", "cores", "cores", ""]
        first = loaded.epochs("lenet5", CONFIG, SETTINGS[0])
        assert [r.steady_s for r in first] == [None, 11.5]
        assert loaded.switch_s("lenet5", other, SETTINGS[0]) == 1.75
        assert loaded.live("lenet5") == frozenset({"cores"})
        assert loaded.live("resnet") == frozenset()
    with gzip.open(tmp_path / "a.csv.gz", "rt") as fh:
        assert fh.readline() == "# pipetune-trace v4\n"
    import pyarrow.parquet as pq

    metadata = pq.read_schema(tmp_path / "b.parquet").metadata
    assert metadata[b"pipetune.trace.version"] == b"4"


V3_COLUMNS = [c for c in COLUMNS if c not in ("reuse_startup_s", "reuse_epoch1_ratio")]
V2_COLUMNS = [c for c in V3_COLUMNS if c not in ("steady_s", "switch_s", "live")]


def test_v2_csv_and_parquet_are_read_and_upgraded(tmp_path: Path):
    v2 = frame(row(1), row(2, loss=None), row(3))[V2_COLUMNS]
    assert len(v2.columns) == 14
    with gzip.open(tmp_path / "old.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write("# pipetune-trace v2\n" + v2.to_csv(index=False))
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(v2, preserve_index=False)
    pq.write_table(
        table.replace_schema_metadata({b"pipetune.trace.version": b"2"}), tmp_path / "old.parquet"
    )
    for name in ("old.csv.gz", "old.parquet"):
        trace = Trace.load(tmp_path / name)
        assert list(trace.frame.columns) == list(COLUMNS)
        rows = trace.epochs("lenet5", CONFIG, SETTINGS[0])
        assert [r.epoch for r in rows] == [1, 2, 3] and rows[1].loss is None
        assert [r.steady_s for r in rows] == [None, None, None]
        assert [r.switch_s for r in rows] == [0.0, 0.0, 0.0]
        assert trace.switch_s("lenet5", CONFIG, SETTINGS[0]) == 0.0
        assert trace.live("lenet5") == frozenset()
        assert trace.frame["live"].tolist() == ["", "", ""]
        assert trace.profile("lenet5") == PROFILE
        # Saving writes v4, which reads back as the same trace.
        trace.save(tmp_path / f"new-{name}")
        with_v4 = Trace.load(tmp_path / f"new-{name}")
        pdt.assert_frame_equal(with_v4.frame, trace.frame, check_exact=True)
        assert not trace.has_reuse("lenet5")  # v2 predates the reuse figures too
    with gzip.open(tmp_path / "new-old.csv.gz", "rt") as fh:
        assert fh.readline() == "# pipetune-trace v4\n"


def test_columns_must_match_the_files_version(tmp_path: Path):
    # A v2 file with a v3 column, and a v3 file without them, are errors naming the column.
    with_switch = frame()[[*V2_COLUMNS, "switch_s"]]
    with gzip.open(tmp_path / "v2.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v2\n" + with_switch.to_csv(index=False))
    with pytest.raises(TraceError) as info:
        Trace.load(tmp_path / "v2.csv.gz")
    assert [(p.row, p.column) for p in info.value.problems] == [(None, "switch_s")]
    assert "column 'switch_s': expected only the columns of v2" in str(info.value)
    with gzip.open(tmp_path / "v3.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v3\n" + frame()[V2_COLUMNS].to_csv(index=False))
    with pytest.raises(TraceError) as info:
        Trace.load(tmp_path / "v3.csv.gz")
    missing = [(p.row, p.column) for p in info.value.problems]
    assert missing == [(None, "steady_s"), (None, "switch_s"), (None, "live")]


def _first_group(trace: Trace) -> tuple[str, str, str]:
    w = trace.workloads()[0]
    c = trace.configs(w)[0]
    return w, c, trace.settings(w, c)[0]


def test_versions_are_checked(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame()), tmp_path / "none.parquet")
    with pytest.raises(TraceError, match=r"pipetune\.trace\.version"):
        Trace.load(tmp_path / "none.parquet")
    table = pa.Table.from_pandas(frame()).replace_schema_metadata({b"pipetune.trace.version": b"1"})
    pq.write_table(table, tmp_path / "v1.parquet")
    with pytest.raises(TraceError, match="found '1'"):  # v1 had no samples column
        Trace.load(tmp_path / "v1.parquet")
    with gzip.open(tmp_path / "v1.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v1\n" + frame().to_csv(index=False))
    with pytest.raises(TraceError, match="pipetune-trace v4"):
        Trace.load(tmp_path / "v1.csv.gz")
    table = pa.Table.from_pandas(frame()).replace_schema_metadata({b"pipetune.trace.version": b"5"})
    pq.write_table(table, tmp_path / "v5.parquet")
    with pytest.raises(TraceError, match="found '5'"):
        Trace.load(tmp_path / "v5.parquet")
    with pytest.raises(TraceError, match=r"\.parquet or \.csv\.gz"):
        Trace.load(tmp_path / "t.json")
    with pytest.raises(TraceError, match="no such trace file"):
        Trace.load(tmp_path / "absent.parquet")


def test_csv_cell_errors_name_the_data_row_and_column(tmp_path: Path):
    text = frame(row(1), row(2, accuracy="high"), row(3)).to_csv(index=False)
    with gzip.open(tmp_path / "bad.csv.gz", "wt") as fh:
        fh.write("# pipetune-trace v4\n" + text)
    with pytest.raises(TraceError) as info:
        Trace.load(tmp_path / "bad.csv.gz")
    assert "row 2, column 'accuracy': expected a number in [0, 1], found 'high'" in str(info.value)
    assert str(tmp_path / "bad.csv.gz") in str(info.value)


def test_missing_and_unknown_columns():
    data = frame().drop(columns=["accuracy", "loss"]).assign(extra=1)
    assert problems(data) == [(None, "accuracy"), (None, "loss"), (None, "extra")]


@pytest.mark.parametrize(
    ("bad_row", "column", "found"),
    [
        (row(2, duration_s="fast"), "duration_s", "'fast'"),
        (row(2, duration_s=-1.0), "duration_s", "-1.0"),
        (row(2, energy_j=np.nan), "energy_j", "null/NaN"),
        (row(2, eval_s=np.inf), "eval_s", "inf"),
        (row(2, accuracy=1.5), "accuracy", "1.5"),
        (row(2, accuracy=None), "accuracy", "null/NaN"),
        (row(2, loss="x"), "loss", "'x'"),
        (row(2.5), "epoch", "2.5"),
        (row(2, workload=""), "workload", "''"),
        (row(2, energy_source=None), "energy_source", "null"),
        (row(2, synthetic="maybe"), "synthetic", "'maybe'"),
        (row(2, config='{"lr": 0.1}'), "config", "non-canonical"),
        (row(2, config="[1]"), "config", "not an object"),
        (row(2, setting="cores"), "setting", "'cores'"),
        (row(2, setting="cores=2,cores=4"), "setting", "'cores=2,cores=4'"),
        (row(2, profile='{"features": 3}'), "profile", "malformed JobProfile"),
        (row(2, profile=json.dumps(PROFILE.to_dict())), "profile", "a profile"),
        (row(2, startup_s=3.0), "startup_s", "2 different values"),
        (row(2, switch_s=3.0), "switch_s", "2 different values"),
        (row(2, switch_s=-0.1), "switch_s", "-0.1"),
        (row(2, switch_s=None), "switch_s", "null/NaN"),
        (row(2, steady_s=-1.0), "steady_s", "-1.0"),
        (row(2, steady_s=np.inf), "steady_s", "inf"),
        (row(2, steady_s="warm"), "steady_s", "'warm'"),
        (row(2, live=""), "live", "'' (row 1 has 'cores')"),
        (row(2, live="cores,memory"), "live", "'cores,memory' (row 1 has 'cores')"),
        (row(4), "epoch", "epochs [1, 3, 4]"),
    ],
)
def test_each_problem_names_row_and_column(bad_row: dict[str, Any], column: str, found: str):
    data = frame(row(1), bad_row, row(3))
    with pytest.raises(TraceError) as info:
        Trace(data)
    [problem] = info.value.problems
    per_group = column in ("startup_s", "switch_s") and "different" in found
    expected_row = 1 if bad_row["epoch"] == 4 or per_group else 2
    assert (problem.row, problem.column) == (expected_row, column)
    assert found in problem.found
    assert f"row {expected_row}, column {column!r}: expected" in str(info.value)


@pytest.mark.parametrize("live", ["co res", "memory,cores", "cores,cores", "cores,", 3])
def test_a_malformed_live_is_reported_on_each_row(live: Any):
    # The same bad value on every row: the names themselves are wrong, not the consistency.
    data = frame(*(row(e, live=live) for e in (1, 2, 3)))
    with pytest.raises(TraceError) as info:
        Trace(data)
    assert [(p.row, p.column) for p in info.value.problems] == [
        (1, "live"),
        (2, "live"),
        (3, "live"),
    ]
    assert all(p.found == repr(live) for p in info.value.problems)
    assert "names ([A-Za-z0-9_.-]+)" in info.value.problems[0].expected


def test_duplicate_keys_name_the_first_row():
    assert problems(frame(row(1), row(2), row(2))) == [(3, "epoch")]
    with pytest.raises(TraceError, match=r"row 3, column 'epoch'.*a duplicate of row 2"):
        Trace(frame(row(1), row(2), row(2)))


def test_every_problem_is_reported_at_once_up_to_a_cap():
    data = frame(row(1, accuracy=2.0), row(2, duration_s=-1.0), row(3, energy_source=3))
    assert problems(data) == [(1, "accuracy"), (2, "duration_s"), (3, "energy_source")]
    many = frame(*(row(e, accuracy=-0.5) for e in range(1, 101)))
    with pytest.raises(TraceError) as info:
        Trace(many)
    assert len(info.value.problems) == 20 and info.value.total == 100
    assert "... and 80 more" in str(info.value)


def test_synthetic_shape_and_determinism():
    settings = [*SETTINGS, SystemSetting.of({"cores": 8, "memory": "4g"})]
    a = synthetic_trace(3, 4, settings, 5, seed=7)
    assert len(a) == 3 * 4 * 3 * 5 and a.is_synthetic
    pdt.assert_frame_equal(a.frame, synthetic_trace(3, 4, settings, 5, seed=7).frame)
    assert not a.frame.equals(synthetic_trace(3, 4, settings, 5, seed=8).frame)
    assert len(a.workloads()) == 3 and all(len(a.configs(w)) == 4 for w in a.workloads())
    profiles = [a.profile(w) for w in a.workloads()]
    assert all(p is not None and len(p.features) >= 4 for p in profiles)
    assert len({json.dumps(p.to_dict()) for p in profiles if p is not None}) == 3
    data = a.frame
    by_epoch = data.groupby("epoch")["accuracy"].mean()
    assert by_epoch.is_monotonic_increasing and by_epoch.between(0, 1).all()
    mean_time = data.groupby(["workload", "setting"], sort=False)["duration_s"].mean().unstack()
    default = settings[0].label()
    faster = mean_time.drop(columns=default).lt(mean_time[default], axis=0)
    assert faster.any(axis=None) and not faster.all(axis=None)


def test_synthetic_live_switch_and_steady_columns():
    trace = synthetic_trace(2, 2, SETTINGS, 3, seed=4)
    data = trace.frame
    assert all(trace.live(w) == frozenset({"cores"}) for w in trace.workloads())
    assert data["switch_s"].between(0.15, 0.45).all()
    assert data.groupby(["workload", "config", "setting"])["switch_s"].nunique().eq(1).all()
    first, later = data[data["epoch"] == 1], data[data["epoch"] > 1]
    ratio = first["steady_s"] / first["duration_s"]
    assert ratio.between(0.6, 0.9).all()
    assert (later["steady_s"] == later["duration_s"]).all()
    memory_only = [SystemSetting.of({"memory": "2g"}), SystemSetting.of({"memory": "4g"})]
    restarts = synthetic_trace(1, 1, memory_only, 2, seed=4)
    assert restarts.live(restarts.workloads()[0]) == frozenset()
    assert (restarts.frame["switch_s"] == 0.0).all()


def test_synthetic_rejects_empty_shapes():
    with pytest.raises(ValueError, match="at least one"):
        synthetic_trace(0, 1, SETTINGS, 1, seed=0)
    with pytest.raises(ValueError, match="repeated"):
        synthetic_trace(1, 1, [SETTINGS[0], SETTINGS[0]], 1, seed=0)


def test_scale_80k_rows(tmp_path: Path):
    settings = [SystemSetting.of({"cores": c, "memory": m}) for c in (2, 4) for m in ("2g", "4g")]
    started = time.perf_counter()
    trace = synthetic_trace(100, 20, settings, 10, seed=0)
    generated = time.perf_counter()
    trace.save(tmp_path / "big.parquet")
    saved = time.perf_counter()
    loaded = Trace.load(tmp_path / "big.parquet")
    done = time.perf_counter()
    assert len(loaded) == 80_000
    print(
        f"\n80k rows: generate {generated - started:.2f} s, save {saved - generated:.2f} s, "
        f"load {done - saved:.2f} s, "
        f"{(tmp_path / 'big.parquet').stat().st_size / 1e6:.1f} MB"
    )
