"""perf_parse: the pure CSV parser on recorded and hand-written outputs, and perf's reasons."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipetune.telemetry.perf_parse import (
    PerfParseError,
    SampleStatus,
    error_reason,
    parse_counts_csv,
    parse_interval_csv,
)

DATA = Path(__file__).parent / "data" / "perf"

OK, NS, NC = SampleStatus.OK, SampleStatus.NOT_SUPPORTED, SampleStatus.NOT_COUNTED


def load(name: str):
    return parse_interval_csv((DATA / name).read_text())


# (file, events, intervals, status counts, first time, last time)
RECORDED = [
    ("software-interval.csv", 6, 6, {OK: 36}, 0.207674668, 1.090889623),
    ("unsupported-hw-interval.csv", 9, 6, {OK: 18, NS: 36}, 0.200285902, 1.020793723),
    ("system-wide.csv", 7, 5, {OK: 35}, 0.250418879, 1.140458651),
    ("pid-not-counted.csv", 3, 7, {OK: 18, NC: 3}, 0.300422011, 2.110023524),
    ("intel-hw-interval.csv", 8, 2, {OK: 16}, 1.001023456, 2.002051234),
    ("multiplexed-not-counted.csv", 6, 2, {OK: 7, NC: 3, NS: 2}, 0.500412345, 1.000823456),
]


@pytest.mark.parametrize(("name", "n_events", "n_times", "statuses", "first", "last"), RECORDED)
def test_parser_reads_every_file(name, n_events, n_times, statuses, first, last):
    samples = load(name)
    assert len({s.event for s in samples}) == n_events
    times = sorted({s.time_s for s in samples})
    assert len(times) == n_times
    assert times[0] == first and times[-1] == last
    assert Counter(s.status for s in samples) == statuses
    for s in samples:
        assert (s.value is None) == (s.status != OK)
        assert s.measured_pct is not None


def test_parser_fields_software():
    samples = load("software-interval.csv")
    first = samples[0]
    assert (first.time_s, first.event, first.value, first.unit, first.status) == (
        0.207674668,
        "task-clock",
        135.47,
        "msec",
        "ok",
    )
    assert samples[1].event == "context-switches" and samples[1].unit == ""
    assert samples[1].value == 100.0


def test_parser_names_with_slashes_and_units():
    by_event = {s.event: s for s in load("system-wide.csv")}
    assert by_event["msr/tsc/"].value == 679854175
    assert by_event["duration_time"].unit == "ns"
    line = "     1.000123456,42,,cpu/cache-misses/,1000,100.00,,\n"
    (s,) = parse_interval_csv(line)
    assert s.event == "cpu/cache-misses/" and s.value == 42


def test_parser_not_counted_keeps_measured_pct():
    idle = [s for s in load("pid-not-counted.csv") if s.status == NC]
    assert {s.time_s for s in idle} == {0.601081097}
    assert all(s.measured_pct == 100.0 for s in idle)  # never enabled: the task did not run
    starved = [s for s in load("multiplexed-not-counted.csv") if s.status == NC]
    assert all(s.measured_pct == 0.0 for s in starved)


def test_parser_skips_metric_only_lines():
    samples = load("intel-hw-interval.csv")
    assert all(s.event for s in samples)
    insn = [s for s in samples if s.event == "instructions"]
    assert [s.value for s in insn] == [14411232000, 8808800000]


def test_parser_counting_mode():
    samples = parse_counts_csv((DATA / "counting-mixed.csv").read_text())
    assert len(samples) == 11
    assert [s.event for s in samples if s.status == NS] == [
        "instructions",
        "cycles",
        "cache-misses",
        "LLC-loads",
    ]
    assert {s.time_s for s in samples} == {0.0}


def test_parser_names_the_bad_line():
    text = (
        "# started on x\n\n"
        "     0.2,5,,page-faults,1,100.00,,\n"
        "     0.4,lots,,page-faults,1,100.00,,\n"
    )
    with pytest.raises(PerfParseError, match=r"line 4.*'lots'"):
        parse_interval_csv(text)
    with pytest.raises(PerfParseError, match="line 1"):
        parse_interval_csv("garbage,1,,x\n")


def test_parser_drops_a_final_line_cut_short():
    text = "     0.2,5,,page-faults,1,100.00,,\n     0.4,7,,page-fa"
    assert [s.value for s in parse_interval_csv(text)] == [5.0]


def test_error_reason_is_perfs_own_words():
    stderr = (
        "event syntax error: 'task-clock,power/energy-pkg/'\n"
        "                     \\___ Cannot find PMU `power'. Missing kernel support?\n"
        "Run 'perf list' for a list of valid events\n\n Usage: perf stat [<options>]\n"
    )
    assert error_reason(stderr) == "Cannot find PMU `power'. Missing kernel support?"
