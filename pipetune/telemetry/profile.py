"""A job's profile: the mean rate per second of each counter over one window (the first
training epoch), as a stable feature vector for recognising recurring jobs.

The original averaged raw 1-s counts over a window that started with `spark-submit`, so JVM
start-up and data loading leaked in, and the column order was whatever perf printed first.
Here the window is explicit, the values are rates over the real interval lengths, and the
features are sorted by name.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipetune.errors import PipeTuneError, Problem
from pipetune.telemetry.perf_parse import PerfSample, SampleStatus
from pipetune.telemetry.proc_counters import ProcReading, rates

FORMAT_VERSION = 1


class ProfileError(PipeTuneError):
    """A profile cannot be built from the samples given, or a stored profile is malformed."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        self.problems = list(problems)
        lines = [message, *(f"  - {p}" for p in self.problems)]
        super().__init__("\n".join(lines))


class ProfileSource(enum.StrEnum):
    PERF = "perf"
    PROC = "proc"
    PERF_PROC = "perf+proc"


@dataclass(frozen=True)
class JobProfile:
    """Rates per second over a `window_s`-second window, sorted by feature name.

    `unsupported` lists events that were asked for but gave no usable count in the window
    (`<not supported>`, or `<not counted>` throughout); they are not features. From
    `profile_window`, `window_s` is the part of the window perf's intervals covered.
    """

    features: Mapping[str, float]
    source: str
    window_s: float
    unsupported: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.source not in set(ProfileSource):
            choices = ", ".join(repr(str(s)) for s in ProfileSource)
            problems.append(Problem("source", f"one of {choices}", repr(self.source)))
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            problems.append(Problem("window_s", "a finite number > 0", repr(self.window_s)))
        for name, value in self.features.items():
            if not (isinstance(value, int | float) and math.isfinite(value)):
                problems.append(Problem(f"features.{name}", "a finite number", repr(value)))
        if problems:
            raise ProfileError("invalid JobProfile", problems)
        sorted_features = {k: float(self.features[k]) for k in sorted(self.features)}
        object.__setattr__(self, "features", sorted_features)
        object.__setattr__(self, "source", ProfileSource(self.source))
        object.__setattr__(self, "window_s", float(self.window_s))
        object.__setattr__(self, "unsupported", tuple(sorted(set(self.unsupported))))

    def vector(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """(names, values), both sorted by name: the same order for every profile."""
        return tuple(self.features), tuple(self.features.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain str/float/list only."""
        return {
            "version": FORMAT_VERSION,
            "source": str(self.source),
            "window_s": self.window_s,
            "features": dict(self.features),
            "unsupported": list(self.unsupported),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobProfile:
        """Inverse of `to_dict`; reports every malformed field at once."""
        problems = []
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            problems.append(Problem("version", str(FORMAT_VERSION), repr(data.get("version"))))
        features = data.get("features")
        if not isinstance(features, Mapping):
            problems.append(Problem("features", "an object of name → number", repr(features)))
            features = {}
        unsupported = data.get("unsupported", [])
        if not isinstance(unsupported, list) or not all(isinstance(u, str) for u in unsupported):
            problems.append(Problem("unsupported", "a list of event names", repr(unsupported)))
            unsupported = []
        window = data.get("window_s")
        if isinstance(window, bool) or not isinstance(window, int | float):
            problems.append(Problem("window_s", "a number", repr(window)))
            window = math.nan
        if problems:
            raise ProfileError("malformed JobProfile", problems)
        return cls(dict(features), str(data.get("source")), window, tuple(unsupported))

    def merged(self, other: JobProfile) -> JobProfile:
        """Perf and /proc profiles of the same window as one "perf+proc" profile."""
        kinds = {self.source, other.source}
        if kinds != {ProfileSource.PERF, ProfileSource.PROC}:
            raise ProfileError(f"can only merge a perf and a proc profile, got {sorted(kinds)}")
        if clash := sorted(set(self.features) & set(other.features)):
            raise ProfileError(f"feature names in both profiles: {clash}")
        return JobProfile(
            {**self.features, **other.features},
            ProfileSource.PERF_PROC,
            max(self.window_s, other.window_s),
            self.unsupported + other.unsupported,
        )


def profile_window(samples: Iterable[PerfSample], start_s: float, end_s: float) -> JobProfile:
    """Mean rate per second of each event over [start_s, end_s] on perf's time axis.

    A sample reported at time t covers (previous report of its event, t]; the first covers
    (0, t]. Intervals straddling an edge are *prorated*: the share of the interval inside the
    window counts, assuming a uniform rate within it. With the default 200 ms interval the
    edge error is at most one interval's rate × the straddling part, and windows shorter than
    an interval still give an answer. The rate is Σ counts in the window / seconds counted,
    i.e. the time-weighted mean of the per-interval rates. Units are perf's per second:
    `task-clock` is msec/s (1000 = one CPU busy), `duration_time` ns/s, the rest counts/s.

    `<not counted>` intervals: when perf's measured % is 100 the counter was never even
    enabled (a `-p` task that did not run), so the true count is 0 and the interval counts as
    zero; otherwise (multiplexing starved it) the count is unknown and the interval is left
    out of that event's seconds. Events with no counted second in the window, or only
    `<not supported>`, are listed in `unsupported`. Several samples of one event at one time
    are summed.

    Raises:
        ProfileError: the window is empty or reversed, or no interval overlaps it.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s) and end_s > start_s):
        raise ProfileError(f"window [{start_s}, {end_s}] s: expected finite start < end")
    per_event: dict[str, dict[float, float | None]] = defaultdict(dict)
    for s in samples:
        points = per_event[s.event]
        value = _count(s)
        if value is None:
            points.setdefault(s.time_s, None)
        else:
            points[s.time_s] = (points.get(s.time_s) or 0.0) + value
    last = max((t for pts in per_event.values() for t in pts), default=0.0)
    window_s = min(end_s, last) - max(start_s, 0.0)
    if window_s <= 0:
        raise ProfileError(
            f"window [{start_s:g}, {end_s:g}] s does not overlap the perf run [0, {last:g}] s"
        )
    features: dict[str, float] = {}
    unsupported: list[str] = []
    for event, points in per_event.items():
        total = seconds = 0.0
        begin = 0.0
        for t in sorted(points):
            length = t - begin
            inside = min(t, end_s) - max(begin, start_s)
            if length > 0 and inside > 0 and points[t] is not None:
                total += (points[t] or 0.0) * inside / length
                seconds += inside
            begin = t
        if seconds > 0:
            features[event] = total / seconds
        else:
            unsupported.append(event)
    return JobProfile(features, ProfileSource.PERF, window_s, tuple(unsupported))


def _count(sample: PerfSample) -> float | None:
    """The interval's count, 0 for a counter that was never enabled, None if unknown."""
    if sample.status == SampleStatus.OK:
        return sample.value
    if sample.status == SampleStatus.NOT_COUNTED and sample.measured_pct == 100.0:
        return 0.0
    return None


def proc_profile(window: ProcReading) -> JobProfile:
    """A "proc" profile from the difference of two `ProcCounters` readings."""
    return JobProfile(rates(window), ProfileSource.PROC, window.time_s)
