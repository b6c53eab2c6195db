"""Energy of a time window from meter data. Pure functions; every meter's arithmetic lives here.

Three shapes of data, three functions:

- a wrapping hardware counter (RAPL µJ, NVML mJ): `counter_delta` turns two raw readings into
  an increase (the ONE place wrap-around is handled); `counter_energy` interpolates the
  cumulative total at the window edges;
- instantaneous power samples (PDU): `integrate_power`, trapezoid over the real timestamps;
- per-interval energies (PCM rows): `prorate_interval_energy`.

Windows are `[start, end]` in the samples' time base (unix seconds). A window the data does not
cover raises `WindowNotCovered`: we never extrapolate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt


class WindowNotCovered(ValueError):
    """The samples do not cover the requested window; the message says by how much."""

    def __init__(self, first: float | None, last: float | None, start: float, end: float) -> None:
        self.first, self.last, self.start, self.end = first, last, start, end
        window = f"window {_clock(start)} – {_clock(end)}"
        if first is None or last is None:
            message = f"no samples yet for the {window}"
        elif start < first:
            message = (
                f"samples start at {_clock(first)}, {first - start:.3f} s after the {window} "
                "begins (was the meter started before the window?)"
            )
        else:
            message = (
                f"samples end at {_clock(last)}, {end - last:.3f} s before the {window} ends "
                "(is the meter still sampling?)"
            )
        super().__init__(message)


class CounterReset(ValueError):
    """A counter without a wrap range went backwards: it was reset (e.g. a driver reload)."""


def _clock(t: float) -> str:
    """Unix seconds as a local wall-clock time with milliseconds, for messages."""
    return datetime.fromtimestamp(t).isoformat(sep=" ", timespec="milliseconds")


def counter_delta(start: int, end: int, max_range: int | None) -> int:
    """Increase of a hardware energy counter between two readings, across at most one wrap.

    Kernel semantics (Documentation/power/powercap/powercap.rst, intel_rapl_common.c): the
    counter's values lie in `[0, max_energy_range_uj]`; `max_energy_range_uj` is the largest
    value it shows (the 32-bit status register's mask times the energy unit), after which it
    rolls over to 0. So across one wrap the increase is `end + (max_range - start)`. The true
    step from the largest value to 0 is one energy unit (15.3–61 µJ, not exposed by sysfs),
    so each wrap undercounts by at most that: ~1e-10 of one wrap period's energy (~262 kJ).
    Two wraps between readings cannot be detected; meters sample far more often than that.

    Args:
        start: Raw counter value at the earlier reading.
        end: Raw counter value at the later reading.
        max_range: Largest value the counter shows before wrapping to 0, or None for a counter
            that never wraps (NVML's 64-bit millijoule total).

    Raises:
        CounterReset: `end < start` on a counter that does not wrap.
        ValueError: a negative reading, or a wrap from a reading above `max_range`.
    """
    if start < 0 or end < 0:
        raise ValueError(f"negative counter reading {start} or {end}")
    if end >= start:
        return end - start
    if max_range is None:
        raise CounterReset(f"counter went backwards from {start} to {end}: it was reset")
    if start > max_range:
        raise ValueError(f"counter reading {start} above its range {max_range}")
    return end + (max_range - start)


def _as_series(
    times: Sequence[float] | npt.ArrayLike, values: Sequence[float] | npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"times and values must be 1-D of equal length, got {t.shape}, {v.shape}")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("sample times must be strictly increasing")
    return t, v


def _check_window(t: npt.NDArray[np.float64], start: float, end: float) -> None:
    if end < start:
        raise ValueError(f"window ends ({end}) before it starts ({start})")
    if t.size == 0:
        raise WindowNotCovered(None, None, start, end)
    if start < t[0] or end > t[-1]:
        raise WindowNotCovered(float(t[0]), float(t[-1]), start, end)


def cumulative_at(times: Sequence[float], totals: Sequence[float], at: float) -> float:
    """A cumulative series (e.g. joules since the first reading) linearly interpolated at `at`."""
    t, c = _as_series(times, totals)
    _check_window(t, at, at)
    return float(np.interp(at, t, c))


def counter_energy(
    times: Sequence[float], totals: Sequence[float], start: float, end: float
) -> float:
    """Joules over `[start, end]` from a monotonic cumulative total sampled at `times`.

    Between readings the power is taken as constant (linear interpolation of the total), which
    is exact at readings and puts a window edge between two readings proportionally.
    """
    t, c = _as_series(times, totals)
    _check_window(t, start, end)
    return float(np.interp(end, t, c) - np.interp(start, t, c))


def integrate_power(
    times: Sequence[float] | npt.ArrayLike,
    watts: Sequence[float] | npt.ArrayLike,
    start: float,
    end: float,
) -> float:
    """Joules over `[start, end]` from power samples: trapezoid over the real timestamps.

    The power at each window edge is linearly interpolated between its neighbouring samples,
    so a window that starts or ends between samples (or lies between two) is handled; spacing
    may be irregular. Exact for power that is piecewise linear between samples.

    Raises:
        WindowNotCovered: the window reaches outside `[times[0], times[-1]]`.
    """
    t, w = _as_series(times, watts)
    _check_window(t, start, end)
    if end == start:
        return 0.0
    inside = (t > start) & (t < end)
    xs = np.concatenate(([start], t[inside], [end]))
    ys = np.concatenate(([np.interp(start, t, w)], w[inside], [np.interp(end, t, w)]))
    return float(np.sum((ys[1:] + ys[:-1]) * 0.5 * np.diff(xs)))


def prorate_interval_energy(
    bounds: Sequence[float] | npt.ArrayLike,
    joules: Sequence[float] | npt.ArrayLike,
    start: float,
    end: float,
) -> float:
    """Joules over `[start, end]` from energies of consecutive intervals (PCM rows).

    Interval `i` is `[bounds[i], bounds[i + 1]]` and holds `joules[i]`, so
    `len(bounds) == len(joules) + 1`. An interval straddling a window edge contributes in
    proportion to the time it overlaps the window (power taken as constant within a row).

    Raises:
        WindowNotCovered: the window reaches outside `[bounds[0], bounds[-1]]`.
    """
    b = np.asarray(bounds, dtype=np.float64)
    e = np.asarray(joules, dtype=np.float64)
    if b.ndim != 1 or e.ndim != 1 or b.size != e.size + 1:
        raise ValueError(f"need len(bounds) == len(joules) + 1, got {b.size} and {e.size}")
    if e.size == 0:
        raise WindowNotCovered(None, None, start, end)
    lo, hi = b[:-1], b[1:]
    if not np.all(hi > lo):
        raise ValueError("interval bounds must be strictly increasing")
    _check_window(b, start, end)
    overlap = np.clip(np.minimum(hi, end) - np.maximum(lo, start), 0.0, None)
    # Rows outside the window count for nothing, even if their value is missing (NaN).
    return float(np.sum(np.where(overlap > 0, e * overlap / (hi - lo), 0.0)))
