"""The `power` and `counters` measurements: one definition for the tuner and the node-side
collectors (`monitoring/`), which write the same measurement, tags and fields.

measurement `power`     tags: node, source, domain [, run, trial]     fields: watts [, joules]
measurement `counters`  tags: node, event, source                     fields: rate_per_s

`power`: the mean power of one node (or one domain of it) over an interval, and the energy of
that interval. `node` is the host the reading belongs to (for a PDU, the node plugged into the
outlet, not the host running the collector); `source` is the meter (`rapl`, `pdu`, `pcm`,
`nvml`: the `Energy.source` values, or `estimate`); `domain` is what was measured (`wall` for a
PDU outlet, `package`, `package+dram`, `gpu`, `job` for the tuner's estimate, ...). `joules` is
absent when the interval's energy is not written, and `watts` is then the interval's mean.
A collector's point covers the interval that ends at the point's time and carries `joules`;
the tuner's points (`segment_points` in schema.py) carry the `run` and `trial` they were
measured for, cover about a second of a segment, are stamped at its middle, and carry no
`joules` (the segment's energy is in `segment`).

`counters`: the mean rate per second of one `perf stat` event over the interval that ends at
the point's time (`event` as perf prints it, e.g. `context-switches`; `source` is `perf`).
Units are perf's: `task-clock` is msec/s (1000 = one CPU busy), the rest counts/s.

Point times are nanoseconds since the epoch. Names are lowercase snake_case; tag values are
never empty. Write floats as floats: InfluxDB fixes a field's type per shard.
"""

from __future__ import annotations

import math

from pipetune.store.base import Point

POWER = "power"
COUNTERS = "counters"

NODE = "node"
SOURCE = "source"
DOMAIN = "domain"
EVENT = "event"
RUN = "run"
TRIAL = "trial"

WATTS = "watts"
JOULES = "joules"
RATE_PER_S = "rate_per_s"

POWER_TAGS: tuple[str, ...] = (NODE, SOURCE, DOMAIN)
RUN_TAGS: tuple[str, ...] = (RUN, TRIAL)  # on the tuner's `power` points only
POWER_FIELDS: tuple[str, ...] = (WATTS, JOULES)
COUNTER_TAGS: tuple[str, ...] = (NODE, EVENT, SOURCE)
COUNTER_FIELDS: tuple[str, ...] = (RATE_PER_S,)

WALL = "wall"
"""The `domain` of a whole node's wall power (a PDU outlet)."""

DOMAIN_BY_SOURCE: dict[str, str] = {
    "pdu": WALL,
    "rapl": "package+dram",
    "pcm": "package",
    "nvml": "gpu",
    "estimate": "job",  # the tuner's estimate covers the job's processes, not the node
}
"""The `domain` tag the tuner writes for a whole-meter power sample of each source."""


def seconds_to_ns(t: float) -> int:
    """Unix seconds (`time.time()`) as the integer nanoseconds a point carries."""
    return round(t * 1e9)


def power_point(
    node: str,
    source: str,
    domain: str,
    watts: float,
    time_ns: int,
    joules: float | None = None,
    *,
    run: str | None = None,
    trial: str | None = None,
) -> Point:
    """A `power` point: mean `watts` over the interval ending at `time_ns`, and its `joules`;
    the tuner's name the `run` and `trial` measured (both or neither).

    Raises:
        ValueError: an empty tag, only one of run and trial, or a power or energy that is not
            a finite number ≥ 0; every problem is named.
    """
    tags = {NODE: node, SOURCE: source, DOMAIN: domain}
    if run is not None or trial is not None:
        tags |= {RUN: run or "", TRIAL: trial or ""}
    problems = _tag_problems(tags)
    problems += _number_problems(WATTS, watts)
    if joules is not None:
        problems += _number_problems(JOULES, joules)
    if problems:
        raise ValueError(f"invalid {POWER} point: " + "; ".join(problems))
    fields = {WATTS: float(watts)}
    if joules is not None:
        fields[JOULES] = float(joules)
    return Point(POWER, tags, fields, time_ns)


def counter_point(node: str, event: str, source: str, rate_per_s: float, time_ns: int) -> Point:
    """A `counters` point: the mean rate per second of `event` over the interval ending then.

    Raises:
        ValueError: an empty tag, or a rate that is not a finite number ≥ 0.
    """
    problems = _tag_problems({NODE: node, EVENT: event, SOURCE: source})
    problems += _number_problems(RATE_PER_S, rate_per_s)
    if problems:
        raise ValueError(f"invalid {COUNTERS} point: " + "; ".join(problems))
    return Point(
        COUNTERS,
        {NODE: node, EVENT: event, SOURCE: source},
        {RATE_PER_S: float(rate_per_s)},
        time_ns,
    )


def _tag_problems(tags: dict[str, str]) -> list[str]:
    return [
        f"tag {key}: expected a non-empty string, found {value!r}"
        for key, value in tags.items()
        if not isinstance(value, str) or not value.strip()
    ]


def _number_problems(name: str, value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"field {name}: expected a number, found {value!r}"]
    if not math.isfinite(value) or value < 0:
        return [f"field {name}: expected a finite number ≥ 0, found {value!r}"]
    return []
