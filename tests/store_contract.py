"""The contract every `Store` passes, run over each implementation (like optuna's
testing/pytest_storages.py). A subclass provides one fixture, `open_store`: a function that
opens the store under test, and opens the *same* store again when called again::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda: MyStore(tmp_path / "m.db")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipetune.store.base import Point, Store

T0 = 1_700_000_000_000_000_000  # 2023-11-14, in ns
S = 1_000_000_000


def typed(fields: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Fields with their types, so that 2 == 2.0 == True do not pass for each other."""
    return {k: (type(v).__name__, v) for k, v in fields.items()}


def rows(points: list[Point]) -> list[tuple[str, dict[str, str], dict[str, Any], int]]:
    return [(p.measurement, p.tags, typed(p.fields), p.time_ns) for p in points]


class StoreContract:
    @pytest.fixture
    def open_store(self) -> Callable[[], Store]:
        raise NotImplementedError("a StoreContract subclass provides the open_store fixture")

    @pytest.fixture
    def store(self, open_store: Callable[[], Store]) -> Iterator[Store]:
        s = open_store()
        yield s
        s.close()

    # ------------------------------------------------------------------ round trip

    def test_round_trip_keeps_measurement_tags_fields_and_time(self, store: Store) -> None:
        written = [
            Point("epoch", {"run": "r1", "trial": "t000"}, {"loss": 0.5, "epoch": 1}, T0),
            Point("epoch", {"run": "r1", "trial": "t000"}, {"loss": 0.25, "epoch": 2}, T0 + S),
        ]
        store.write(written)
        assert rows(store.query("epoch")) == rows(written)

    def test_field_types_are_preserved(self, store: Store) -> None:
        fields: dict[str, Any] = {
            "f_integral": 2.0,
            "f_tenth": 0.1,
            "f_tiny": 1e-300,
            "f_huge": 1.7976931348623157e308,
            "f_negative": -3.5,
            "i_small": -5,
            "i_big": 2**62 + 1,
            "i_zero": 0,
            "b_true": True,
            "b_false": False,
            "s_plain": "rapl",
            "s_awkward": 'say "hi", a\\b = c, tab\there\nnext line, naïve ☃',
            "s_empty": "",
        }
        store.write([Point("types", {"k": "v"}, fields, T0)])
        (got,) = store.query("types")
        assert typed(got.fields) == typed(fields)

    def test_nan_inf_and_none_read_back_as_none(self, store: Store) -> None:
        store.write(
            [
                Point("m", {"k": "a"}, {"ok": 1.0, "loss": float("nan"), "acc": None}, T0),
                Point("m", {"k": "a"}, {"only": float("inf")}, T0 + 1),
                Point("m", {"k": "a"}, {"x": -math.inf, "y": None}, T0 + 2),
            ]
        )
        got = store.query("m")
        assert [typed(p.fields) for p in got] == [
            typed({"ok": 1.0, "loss": None, "acc": None}),
            typed({"only": None}),
            typed({"x": None, "y": None}),
        ]

    def test_a_point_without_fields_round_trips(self, store: Store) -> None:
        store.write([Point("marker", {"run": "r"}, {}, T0)])
        assert rows(store.query("marker")) == [("marker", {"run": "r"}, {}, T0)]

    # ------------------------------------------------------------------ tag matching

    def test_tags_match_exactly_never_as_substring_or_regex(self, store: Store) -> None:
        store.write(
            [
                Point("epoch", {"batch": "32", "cores": "2"}, {"v": 1.0}, T0 + 1),
                Point("epoch", {"batch": "320", "cores": "2"}, {"v": 2.0}, T0 + 2),
                Point("epoch", {"batch": "3", "cores": "2"}, {"v": 3.0}, T0 + 3),
                Point("epoch", {"batch": "132", "cores": "1"}, {"v": 4.0}, T0 + 4),
                Point("epoch", {"cores": "2"}, {"v": 5.0}, T0 + 5),
            ]
        )

        def values(tags: dict[str, str]) -> list[float]:
            return [p.fields["v"] for p in store.query("epoch", tags)]

        assert values({"batch": "32"}) == [1.0]
        assert values({"batch": "320"}) == [2.0]
        assert values({"batch": "3"}) == [3.0]
        assert values({"batch": ".*"}) == []
        assert values({"batch": "3.*"}) == []
        assert values({"batch": "32", "cores": "2"}) == [1.0]
        assert values({"batch": "32", "cores": "1"}) == []
        assert values({"cores": "2"}) == [1.0, 2.0, 3.0, 5.0]  # a subset of tags matches
        assert values({"memory": "2g"}) == []  # a tag the points lack never matches
        assert values({}) == [1.0, 2.0, 3.0, 4.0, 5.0]

    @pytest.mark.parametrize(
        "value",
        [
            "it's a test",
            'x" y',
            "a,b=c d",
            "x' OR 'a'='a",
            "back\\slash",
            "naïve ☃",
            "trailing'",
        ],
    )
    def test_awkward_tag_values_are_quoted_not_interpreted(self, store: Store, value: str) -> None:
        store.write(
            [
                Point("m", {"setting": value}, {"v": 1}, T0),
                Point("m", {"setting": "plain"}, {"v": 2}, T0 + 1),
                Point("m", {"setting": value + "x"}, {"v": 3}, T0 + 2),
            ]
        )
        got = store.query("m", {"setting": value})
        assert rows(got) == [("m", {"setting": value}, typed({"v": 1}), T0)]

    # ------------------------------------------------------------------ time

    def test_time_window_is_inclusive_at_both_ends(self, store: Store) -> None:
        store.write([Point("m", {"k": "v"}, {"i": i}, T0 + i * S) for i in range(5)])

        def times(start: int | None, end: int | None) -> list[int]:
            return [p.fields["i"] for p in store.query("m", start_ns=start, end_ns=end)]

        assert times(T0 + S, T0 + 3 * S) == [1, 2, 3]
        assert times(T0 + S + 1, T0 + 3 * S - 1) == [2]
        assert times(T0 + 3 * S, None) == [3, 4]
        assert times(None, T0 + S) == [0, 1]
        assert times(T0 + 2 * S, T0 + 2 * S) == [2]
        assert times(T0 + 3 * S, T0 + S) == []

    def test_results_are_ordered_by_time_across_series(self, store: Store) -> None:
        order = [5, 1, 4, 0, 3, 2]
        store.write([Point("m", {"trial": f"t{i % 2}"}, {"i": i}, T0 + i * S) for i in order])
        got = store.query("m")
        assert [p.fields["i"] for p in got] == [0, 1, 2, 3, 4, 5]
        assert [p.time_ns for p in got] == sorted(p.time_ns for p in got)

    def test_far_past_and_future_times_without_a_window(self, store: Store) -> None:
        far_future = 4_102_444_800 * S  # 2100-01-01
        store.write(
            [
                Point("m", {"k": "v"}, {"i": 1}, far_future),
                Point("m", {"k": "v"}, {"i": 0}, 0),
                Point("m", {"k": "v"}, {"i": -1}, -5 * S),
            ]
        )
        assert [p.time_ns for p in store.query("m")] == [-5 * S, 0, far_future]

    # ------------------------------------------------------------------ measurements, identity

    def test_measurements_are_kept_apart(self, store: Store) -> None:
        tags = {"run": "r"}
        store.write(
            [
                Point("epoch", tags, {"duration_s": 1.0}, T0),
                Point("segment", tags, {"wall_s": 9.0}, T0),
                Point("epochs", tags, {"other": 1.0}, T0),
                Point("power", tags, {"watts": 50.0}, T0 + 1),
            ]
        )
        assert rows(store.query("epoch")) == [("epoch", tags, typed({"duration_s": 1.0}), T0)]
        assert rows(store.query("segment")) == [("segment", tags, typed({"wall_s": 9.0}), T0)]
        assert [p.measurement for p in store.query("power")] == ["power"]
        assert store.query("nothing") == []

    def test_rewriting_a_point_merges_instead_of_duplicating(self, store: Store) -> None:
        point = Point("m", {"k": "v"}, {"a": 1.0, "b": "x"}, T0)
        store.write([point])
        store.write([point])
        store.write([Point("m", {"k": "v"}, {"b": "y", "c": 3, "a": None}, T0)])
        store.write([Point("m", {"k": "other"}, {"a": 2.0}, T0)])  # other tags: other point
        got = store.query("m", {"k": "v"})
        assert rows(got) == [("m", {"k": "v"}, typed({"a": 1.0, "b": "y", "c": 3}), T0)]
        assert len(store.query("m")) == 2

    def test_rewriting_keeps_nulls_of_both_writes(self, store: Store) -> None:
        store.write([Point("m", {"k": "v"}, {"a": None, "x": 1}, T0)])
        store.write([Point("m", {"k": "v"}, {"b": float("nan")}, T0)])
        store.write([Point("m", {"k": "v"}, {"x": None}, T0)])  # a null never erases a value
        (got,) = store.query("m")
        assert typed(got.fields) == typed({"a": None, "b": None, "x": 1})

    def test_empty_write_is_a_no_op(self, store: Store) -> None:
        store.write([])
        assert store.query("m") == []

    # ------------------------------------------------------------------ volume, durability

    def test_five_thousand_points_in_one_write(self, store: Store) -> None:
        n = 5000
        store.write(
            [
                Point("power", {"node": f"n{i % 4}"}, {"watts": i / 4, "seq": i}, T0 + i)
                for i in range(n)
            ]
        )
        got = store.query("power")
        assert len(got) == n
        assert [p.fields["seq"] for p in got] == list(range(n))
        assert got[4999].fields == {"watts": 4999 / 4, "seq": 4999}
        assert got[4999].tags == {"node": "n3"}
        assert len(store.query("power", {"node": "n1"})) == n // 4

    def test_points_survive_close_and_reopen(self, open_store: Callable[[], Store]) -> None:
        first = open_store()
        first.write([Point("m", {"k": "v"}, {"i": i}, T0 + i) for i in range(3)])
        first.close()
        second = open_store()
        try:
            assert [p.fields["i"] for p in second.query("m")] == [0, 1, 2]
        finally:
            second.close()
