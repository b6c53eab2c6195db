"""profile_window: rates over the window only, real interval lengths, proration at the edges;
JobProfile: stable order and a JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipetune.telemetry.perf_parse import PerfSample, SampleStatus, parse_interval_csv
from pipetune.telemetry.proc_counters import ProcReading
from pipetune.telemetry.profile import (
    JobProfile,
    ProfileError,
    ProfileSource,
    proc_profile,
    profile_window,
)

DATA = Path(__file__).parent / "data" / "perf"
OK = SampleStatus.OK


def series(event: str, intervals: list[tuple[float, float]]) -> list[PerfSample]:
    """Samples from (end time, rate per second); counts are rate × the real interval length."""
    out, begin = [], 0.0
    for end, rate in intervals:
        out.append(PerfSample(end, event, rate * (end - begin), "", OK, 100.0))
        begin = end
    return out


def test_startup_and_teardown_do_not_leak_into_the_window():
    # Start-up (0–2 s) and after the epoch (4–5 s) run at 1e12/s; the epoch at 100/s, with
    # intervals of 0.3, 0.5, 0.2 and 1.0 s.
    samples = series(
        "page-faults",
        [(1.0, 1e12), (2.0, 1e12), (2.3, 100), (2.8, 100), (3.0, 100), (4.0, 100), (5.0, 1e12)],
    )
    profile = profile_window(samples, 2.0, 4.0)
    assert profile.features["page-faults"] == pytest.approx(100.0)
    assert profile.window_s == pytest.approx(2.0)
    assert profile.source == ProfileSource.PERF


def test_rates_use_real_interval_lengths():
    # Same count (50) in a 0.5 s and a 0.1 s interval: 100/s and 500/s, time-weighted → 166.7.
    samples = [
        PerfSample(0.5, "context-switches", 50.0, "", OK, 100.0),
        PerfSample(0.6, "context-switches", 50.0, "", OK, 100.0),
    ]
    assert profile_window(samples, 0.0, 0.6).features["context-switches"] == pytest.approx(
        100 / 0.6
    )


def test_straddling_intervals_are_prorated():
    # (0, 1] at 1000/s, (1, 2] at 10/s, (2, 3] at 1000/s; window [0.5, 2.25].
    samples = series("x", [(1.0, 1000), (2.0, 10), (3.0, 1000)])
    expected = (0.5 * 1000 + 1.0 * 10 + 0.25 * 1000) / 1.75
    profile = profile_window(samples, 0.5, 2.25)
    assert profile.features["x"] == pytest.approx(expected)
    assert profile.window_s == pytest.approx(1.75)


def test_window_shorter_than_an_interval():
    samples = series("x", [(1.0, 40), (2.0, 80)])
    assert profile_window(samples, 1.2, 1.4).features["x"] == pytest.approx(80)


def test_unsorted_input_and_window_past_the_end():
    samples = series("x", [(1.0, 10), (2.0, 30)])
    profile = profile_window(list(reversed(samples)), 1.0, 9.0)
    assert profile.features["x"] == pytest.approx(30)
    assert profile.window_s == pytest.approx(1.0)  # perf covered only [1, 2] of [1, 9]


def test_not_counted_idle_is_zero_and_starved_is_unknown():
    # Recorded: a -p target sleeping 0.3–0.6 s gives <not counted> with 100 %: a true zero.
    samples = parse_interval_csv((DATA / "pid-not-counted.csv").read_text())
    idle = profile_window(samples, 0.300422011, 0.601081097)
    assert idle.features["task-clock"] == 0.0
    assert idle.unsupported == ()
    # Hand-written multiplexing: instructions counted only in the first interval.
    mux = parse_interval_csv((DATA / "multiplexed-not-counted.csv").read_text())
    profile = profile_window(mux, 0.0, 1.000823456)
    assert profile.features["instructions"] == pytest.approx(3604500000 / 0.500412345)
    assert profile.features["cycles"] == pytest.approx((2403000000 + 2402000000) / 1.000823456)
    assert profile.unsupported == ("LLC-load-misses", "msr/smi/")
    assert "msr/smi/" not in profile.features


def test_recorded_unsupported_hardware_events_are_listed_not_features():
    samples = parse_interval_csv((DATA / "unsupported-hw-interval.csv").read_text())
    profile = profile_window(samples, 0.2, 1.0)
    names, values = profile.vector()
    assert names == ("context-switches", "page-faults", "task-clock")
    assert set(profile.unsupported) == {
        "branch-misses",
        "branches",
        "cache-misses",
        "cache-references",
        "cycles",
        "instructions",
    }
    # task-clock is msec per interval: about 1000 msec/s while one core is busy.
    assert 800 < values[2] < 1100


def test_bad_windows_are_refused():
    samples = series("x", [(1.0, 1.0)])
    with pytest.raises(ProfileError, match="start < end"):
        profile_window(samples, 2.0, 1.0)
    with pytest.raises(ProfileError, match="does not overlap"):
        profile_window(samples, 5.0, 6.0)
    with pytest.raises(ProfileError, match="does not overlap"):
        profile_window([], 0.0, 1.0)


def test_job_profile_order_is_stable():
    a = JobProfile({"b": 2.0, "a": 1.0, "proc.z": 3.0}, "perf", 1.0, ("y", "x"))
    b = JobProfile({"proc.z": 3.0, "a": 1.0, "b": 2.0}, "perf", 1.0, ("x", "y"))
    assert a.vector() == (("a", "b", "proc.z"), (1.0, 2.0, 3.0))
    assert a == b and a.unsupported == ("x", "y")


def test_job_profile_json_round_trip():
    profile = JobProfile({"task-clock": 998.5, "page-faults": 12.25}, "perf", 2.5, ("cycles",))
    data = json.loads(json.dumps(profile.to_dict()))
    back = JobProfile.from_dict(data)
    assert back == profile and back.vector() == profile.vector()
    assert data["source"] == "perf" and data["version"] == 1


def test_from_dict_reports_every_problem():
    with pytest.raises(ProfileError) as err:
        JobProfile.from_dict({"features": [1], "unsupported": "x", "window_s": "long"})
    assert {p.path for p in err.value.problems} == {"features", "unsupported", "window_s"}
    with pytest.raises(ProfileError) as err:
        JobProfile.from_dict({"features": {"a": float("nan")}, "source": "x", "window_s": 0})
    assert {p.path for p in err.value.problems} == {"source", "window_s", "features.a"}


def test_perf_and_proc_profiles_merge():
    perf = JobProfile({"task-clock": 900.0}, "perf", 2.0, ("cycles",))
    window = ProcReading(2.0, {"proc.cpu_user_s": 1.8, "proc.threads": 40.0})
    proc = proc_profile(window)
    assert proc.features["proc.cpu_user_s"] == pytest.approx(0.9)
    merged = perf.merged(proc)
    assert merged.source == "perf+proc" and merged.unsupported == ("cycles",)
    assert merged.vector()[0][0] == "proc.cpu_system_s"  # sorted: "proc." < "task-clock"
    with pytest.raises(ProfileError, match="can only merge"):
        perf.merged(perf)
