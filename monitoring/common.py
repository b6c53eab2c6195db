"""What every node-side collector shares: the `Collector` extension point, the meters'
collector, and `run_collector` (its options are `options.py`, its loop `loop.py`).

A collector script builds a `Collector` from its options and hands it to `run_collector`,
which checks `availability()` once (exit 2 with the reason when the probe cannot measure),
opens the store, calls `start()`, then `collect()` at the end of every interval and writes the
points, until SIGTERM or SIGINT (or `--once`). Then it stops the collector, flushes and closes
the store (points the server did not take stay in the spool for the next run) and exits 0.

Heavy imports (the meters pull in numpy, the InfluxDB client requests) happen inside
functions, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring.loop import StopSignals, run_until_signalled
from monitoring.options import open_store, setup_logging
from pipetune.store import schema_power

if TYPE_CHECKING:
    from pipetune.store.base import Point
    from pipetune.store.influx import InfluxStore
    from pipetune.telemetry.meter import Availability, SampledMeter

log = logging.getLogger("monitoring")

EXIT_OK = 0
EXIT_FAILED = 1  # --once and the sample failed, or points were refused at close
EXIT_UNAVAILABLE = 2  # bad options, the probe cannot measure here, unusable credentials


# --- the extension point ------------------------------------------------------------------


class Collector(ABC):
    """One probe read every interval into points.

    `run_collector` calls `availability()` once, `start()` just before the first interval,
    `collect()` at the end of every interval, and `stop()` once at the end (also after a
    failure). `collect()` may raise; the loop logs it and carries on.
    """

    finished: bool = False  # set by a collector whose subject is gone (a `--pid` that exited)

    @abstractmethod
    def availability(self) -> Availability:
        """Whether the probe can measure here, and if not why; never raises."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the log: what is measured, where from."""

    def start(self) -> None:  # noqa: B027 - optional
        """Take the first reading (the start of the first interval)."""

    @abstractmethod
    def collect(self) -> list[Point]:
        """The points of the interval that ends now."""

    def stop(self) -> None:  # noqa: B027 - optional
        """Release the probe."""


@dataclass
class Channel:
    """One `power` series: a meter, the node and domain its energy belongs to.

    `make_meter` builds a fresh meter; `MeterCollector` replaces the meter with a new one every
    `recycle_s` because the package's meters keep every reading they ever took.
    """

    node: str
    domain: str
    make_meter: Callable[[], SampledMeter]
    meter: SampledMeter | None = None
    since: float = 0.0
    born: float = 0.0


class MeterCollector(Collector):
    """`power` points from package meters: mean watts and joules of each interval.

    The meters expose energy over a window, not their raw readings, so each interval's power
    is `energy(previous end, now) / (now - previous end)`. The meters' background threads are
    not used: `energy()` reads the source itself when its data does not reach the window's end
    yet, so every interval costs one reading per channel (one HTTP request per PDU outlet, one
    pass over the RAPL files, a read of what pcm appended). Windows are contiguous.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        recycle_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not channels:
            raise ValueError("a meter collector needs at least one channel")
        self.channels = list(channels)
        self.recycle_s = recycle_s
        self._clock = clock
        for channel in self.channels:
            channel.meter = channel.make_meter()

    def availability(self) -> Availability:
        from pipetune.telemetry.meter import Availability

        for channel in self.channels:
            availability = self._meter(channel).availability()
            if not availability.ok:
                return availability
        return Availability(True)

    def describe(self) -> str:
        return "; ".join(
            f"{c.node} ({c.domain}) ← {self._meter(c).describe()}" for c in self.channels
        )

    def start(self) -> None:
        for channel in self.channels:
            self._meter(channel).poll()
            channel.since = self._clock()
            channel.born = time.monotonic()

    def collect(self) -> list[Point]:
        from pipetune.telemetry.meter import MeterUnavailable

        points: list[Point] = []
        problems: list[str] = []
        for channel in self.channels:
            try:
                points.append(self._interval(channel))
            except MeterUnavailable as exc:
                problems.append(f"{channel.node} ({channel.domain}): {exc}")
        if problems and not points:
            raise MeterUnavailable("; ".join(problems))
        for problem in problems:
            log.warning("no power for %s", problem)
        return points

    def _interval(self, channel: Channel) -> Point:
        meter = self._meter(channel)
        fresh = self._fresh_meter(channel)
        start, end = channel.since, self._clock()
        channel.since = end  # a failed window is skipped, never retried: the next one is short
        try:
            energy = meter.energy(start, end)
        finally:
            if fresh is not None:
                channel.meter, channel.born = fresh, time.monotonic()
        watts = energy.joules / (end - start) if end > start else 0.0
        return schema_power.power_point(
            channel.node,
            energy.source,
            channel.domain,
            watts,
            schema_power.seconds_to_ns(end),
            joules=energy.joules,
        )

    def _fresh_meter(self, channel: Channel) -> SampledMeter | None:
        """A replacement meter that already holds a reading, when the current one is old."""
        if not (self.recycle_s > 0 and time.monotonic() - channel.born >= self.recycle_s):
            return None
        from pipetune.telemetry.meter import MeterUnavailable

        fresh = channel.make_meter()
        try:
            fresh.poll()  # before this interval's end: it covers the next interval's start
        except MeterUnavailable as exc:
            log.warning("keeping the old meter of %s for now: %s", channel.node, exc)
            return None
        return fresh

    @staticmethod
    def _meter(channel: Channel) -> SampledMeter:
        if channel.meter is None:
            channel.meter = channel.make_meter()
        return channel.meter


# --- running one ----------------------------------------------------------------------------


def run_collector(args: argparse.Namespace, build: Callable[[], Collector]) -> int:
    """Build, check, start and run a collector, writing its points; the exit status.

    `build` may raise ValueError (bad options) or MeterUnavailable: both exit 2 with the
    message on stderr, as does an unavailable probe.
    """
    setup_logging(args)
    prog = args.collector_name
    with StopSignals() as signals:  # from here on a SIGTERM is orderly, even during start-up
        try:
            collector, store = _started(args, build)
        except _CannotStart as exc:
            return _fail(prog, str(exc))
        log.info("%s: %s", prog, collector.describe())
        log.info("%s: every %g s → %s", prog, args.interval, store.location)
        reachability = store.status()
        if not reachability.reachable:
            log.warning(
                "InfluxDB at %s: %s; points wait in the spool until it answers",
                reachability.location,
                reachability.detail or "unreachable",
            )

        def step() -> bool:
            points = collector.collect()
            store.write(points)
            log.debug("wrote %d point(s)", len(points))
            return not collector.finished

        try:
            outcome = run_until_signalled(
                step, args.interval, once=args.once, signals=signals, debug=args.debug
            )
        finally:
            collector.stop()
            status = _close(store)
        log.info(
            "%s: stopped (%s) after %d interval(s), %d failed",
            prog,
            outcome.stopped_by,
            outcome.steps,
            outcome.failures,
        )
        if status is None:
            return EXIT_FAILED
        if args.once and outcome.failures:
            return EXIT_FAILED
        return EXIT_OK


class _CannotStart(Exception):
    """Why a collector cannot run: its message goes to stderr and the exit status is 2."""


def _started(
    args: argparse.Namespace, build: Callable[[], Collector]
) -> tuple[Collector, InfluxStore]:
    """The collector built, available and started, and its store open; else `_CannotStart`."""
    from pipetune.errors import PipeTuneError

    try:
        collector = build()
    except ValueError as exc:
        raise _CannotStart(str(exc)) from exc
    except PipeTuneError as exc:
        raise _CannotStart(f"cannot measure here: {exc}") from exc
    availability = collector.availability()
    if not availability.ok:
        raise _CannotStart(f"cannot measure here: {availability.reason}")
    try:
        store = open_store(args)
    except PipeTuneError as exc:
        raise _CannotStart(str(exc)) from exc
    try:
        collector.start()
    except PipeTuneError as exc:
        collector.stop()
        _close(store)
        raise _CannotStart(f"cannot measure here: {exc}") from exc
    return collector, store


def _close(store: InfluxStore) -> int | None:
    """Flush and close; the number of points left in the spool, None if some were refused."""
    from pipetune.errors import PipeTuneError

    spooled: int | None = None
    try:
        store.flush()
        spooled = store.status().spooled
    except PipeTuneError as exc:
        log.error("%s", exc)
    try:
        store.close()
    except PipeTuneError as exc:
        log.error("%s", exc)
        spooled = None
    if spooled:
        log.warning(
            "%d point(s) wait in the spool for %s; the next run sends them", spooled, store.location
        )
    return spooled


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return EXIT_UNAVAILABLE
