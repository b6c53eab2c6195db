"""What `perf stat -x ,` writes, read by pure functions: one sample per counter and interval,
and perf's own words when it refuses an event list.

The original PipeTune ran `perf stat -a -I 1000` without `-x` and then split lines on `;`; here
the separator is always given (`-x ,`), and parsing is one pure function.

CSV layout written by `perf stat -x , -I <ms>` (perf 6.1, observed on the dev VM)::

    # started on Thu Nov 26 00:37:20 2026
    <blank>
         0.205098357,162.75,msec,task-clock,162752734,100.00,0.814,CPUs utilized
         0.205098357,134,,context-switches,162767130,100.00,823.334,/sec
         0.601081097,<not counted>,msec,task-clock,0,100.00,,
         0.200312345,<not supported>,,instructions,0,100.00,,

i.e. ``time, value, unit, event, run time (ns), measured %, metric value, metric unit``.
`time` is seconds since perf started counting, printed at the *end* of each interval; the last
interval (flushed on SIGINT or when the workload exits) is usually shorter. Without `-I` the
first field is missing. Values are scaled by perf when counters are multiplexed; `measured %` is
100 × run time / enabled time (100.00 when both are zero). Lines whose value and event are both
empty carry only an extra metric of the previous event and are skipped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pipetune.errors import PipeTuneError


class PerfError(PipeTuneError):
    """perf is missing, refused to start, or failed while counting."""


class PerfParseError(PerfError):
    """A line of perf's CSV output is not in the expected layout."""


class SampleStatus(enum.StrEnum):
    """What perf said about a counter in one interval."""

    OK = "ok"
    NOT_SUPPORTED = "not supported"  # the event does not exist on this machine (value is None)
    NOT_COUNTED = "not counted"  # the counter never ran in the interval (value is None)


@dataclass(frozen=True)
class PerfSample:
    """One counter in one interval, reported at the interval's end time.

    `measured_pct` is perf's "percentage of the enabled time the counter ran": below 100 the
    value was scaled up from multiplexed counting; on a `not counted` sample, 100 means the
    counter was not even enabled (a `-p` task that never ran: a true zero), 0 means it was
    enabled but never got a hardware counter (unknown).
    """

    time_s: float
    event: str
    value: float | None
    unit: str
    status: str
    measured_pct: float | None = None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_row(fields: list[str], time_s: float, lineno: int, line: str) -> PerfSample | None:
    """`fields` starts at the counter value. None for a metric-only continuation line."""
    if len(fields) < 3:
        raise PerfParseError(f"line {lineno}: expected at least 3 counter fields: {line!r}")
    raw, unit, event = fields[0], fields[1], fields[2]
    if not raw and not event:
        return None
    if not event:
        raise PerfParseError(f"line {lineno}: empty event name: {line!r}")
    pct = _float_or_none(fields[4]) if len(fields) > 4 else None
    if raw == "<not supported>":
        return PerfSample(time_s, event, None, unit, SampleStatus.NOT_SUPPORTED, pct)
    if raw == "<not counted>":
        return PerfSample(time_s, event, None, unit, SampleStatus.NOT_COUNTED, pct)
    value = _float_or_none(raw)
    if value is None:
        raise PerfParseError(f"line {lineno}: counter value {raw!r} is not a number: {line!r}")
    return PerfSample(time_s, event, value, unit, SampleStatus.OK, pct)


def _rows(text: str) -> list[tuple[int, str, list[str]]]:
    """Data lines as (line number, line, fields). A final line without its newline is a write
    cut short (perf killed mid-line) and is dropped."""
    lines = text.split("\n")
    if lines and lines[-1].strip() and not text.endswith("\n"):
        lines = lines[:-1]
    out = []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        out.append((lineno, line, [f.strip() for f in stripped.split(",")]))
    return out


def parse_interval_csv(text: str) -> list[PerfSample]:
    """Parse the output of `perf stat -x , -I <ms>` (default aggregation, no `-A`/`--per-*`).

    Raises:
        PerfParseError: naming the first line that is not in perf's interval CSV layout.
    """
    samples: list[PerfSample] = []
    for lineno, line, fields in _rows(text):
        time_s = _float_or_none(fields[0])
        if time_s is None:
            raise PerfParseError(f"line {lineno}: interval time {fields[0]!r} is not a number")
        sample = _parse_row(fields[1:], time_s, lineno, line)
        if sample is not None:
            samples.append(sample)
    return samples


def parse_counts_csv(text: str) -> list[PerfSample]:
    """Parse the output of `perf stat -x ,` without `-I` (one total per event; `time_s` is 0)."""
    samples: list[PerfSample] = []
    for lineno, line, fields in _rows(text):
        sample = _parse_row(fields, 0.0, lineno, line)
        if sample is not None:
            samples.append(sample)
    return samples


def error_reason(stderr: str) -> str:
    """perf's own words for why an event list was refused, in one line."""
    for line in stderr.splitlines():
        if "\\___" in line:
            detail = line.split("\\___", 1)[1].strip()
            return "unknown event (perf: parser error)" if detail == "parser error" else detail
    useful = [
        ln.strip()
        for ln in stderr.splitlines()
        if ln.strip() and not ln.strip().startswith(("Run 'perf list'", "Usage:", "-"))
    ]
    return " ".join(useful[:2]) or "perf stat failed with no message"
