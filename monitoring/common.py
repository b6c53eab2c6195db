"""What every node-side collector shares: options, logging, the InfluxDB store, the loop.

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
import math
import os
import signal
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from pipetune.store import schema_power

if TYPE_CHECKING:
    from pipetune.store.base import Point
    from pipetune.store.influx import InfluxStore
    from pipetune.telemetry.meter import Availability, SampledMeter

log = logging.getLogger("monitoring")

EXIT_OK = 0
EXIT_FAILED = 1  # --once and the sample failed, or points were refused at close
EXIT_UNAVAILABLE = 2  # bad options, the probe cannot measure here, unusable credentials

DEFAULT_DATABASE = "pipetune"
DEFAULT_INFLUX_PORT = 8086


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


# --- options --------------------------------------------------------------------------------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, found {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, found {text!r}")
    return value


def default_node() -> str:
    """This host's name, as `hostname` prints it."""
    return socket.gethostname()


def default_spool(name: str) -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pipetune" / f"{name}-spool.sqlite"


def build_parser(
    name: str,
    description: str,
    example: str,
    *,
    writes: str = schema_power.POWER,
    default_interval: float = 1.0,
    node_option: bool = True,
) -> argparse.ArgumentParser:
    """The parser every collector starts from; the script adds its own probe's options.

    `writes` is the measurement the collector writes (its schema goes into the help).
    """
    epilog = f"example:\n  {example}\n\n{_SCHEMA_HELP[writes]}\n\n{_EXIT_HELP}"
    parser = argparse.ArgumentParser(
        prog=f"python -m monitoring.{name}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(collector_name=name)
    run = parser.add_argument_group("sampling")
    if node_option:
        run.add_argument(
            "--node",
            default=default_node(),
            help="value of the `node` tag (default: this host's name, %(default)s)",
        )
    run.add_argument(
        "--interval",
        type=positive_float,
        default=default_interval,
        metavar="SECONDS",
        help="length of one interval: one point per series per interval (default %(default)g)",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="measure one interval, write its points, flush and exit (for tests and cron)",
    )
    run.add_argument(
        "--recycle",
        type=non_negative_float,
        default=3600.0,
        metavar="SECONDS",
        help="replace each meter with a fresh one this often, as meters keep every reading "
        "they take; 0: never (default %(default)g)",
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--debug", action="store_true", help="log tracebacks of failures")
    store = parser.add_argument_group("InfluxDB target (1.x HTTP API)")
    store.add_argument(
        "--influx-host", default="127.0.0.1", metavar="HOST", help="default %(default)s"
    )
    store.add_argument(
        "--influx-port",
        type=int,
        default=DEFAULT_INFLUX_PORT,
        metavar="PORT",
        help="default %(default)s",
    )
    store.add_argument(
        "--database",
        metavar="NAME",
        default=DEFAULT_DATABASE,
        help="created if missing (default %(default)s, the tuner's default too)",
    )
    store.add_argument(
        "--credentials-file",
        type=Path,
        metavar="PATH",
        help="JSON {user, password} or `user:password`, mode 600; default: the environment "
        "(PIPETUNE_INFLUX_USER/PASSWORD or PIPETUNE_INFLUX_CREDENTIALS), else anonymous",
    )
    store.add_argument(
        "--spool",
        type=Path,
        metavar="PATH",
        help="SQLite file holding points while the server is unreachable; replayed first on "
        f"the next send (default {default_spool(name)})",
    )
    store.add_argument(
        "--flush-interval",
        type=non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="send buffered points at least this often; 0 sends every interval's points at "
        "once (default %(default)g)",
    )
    return parser


_SCHEMA_HELP = {
    schema_power.POWER: f"""\
writes (schema: pipetune/store/schema_power.py):
  measurement `{schema_power.POWER}`, tags {", ".join(schema_power.POWER_TAGS)}; fields
  {schema_power.WATTS} (mean W over the interval) and {schema_power.JOULES} (J in the interval); \
time: the interval's end.""",
    schema_power.COUNTERS: f"""\
writes (schema: pipetune/store/schema_power.py):
  measurement `{schema_power.COUNTERS}`, tags {", ".join(schema_power.COUNTER_TAGS)}; field
  {schema_power.RATE_PER_S} (mean events per second over the interval); time: the interval's \
end.""",
}

_EXIT_HELP = """\
exit status: 0 stopped by SIGTERM/SIGINT or after --once (unsent points stay in the spool);
  1 --once and the sample failed; 2 bad options or the probe cannot measure here (reason on
  stderr)."""


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else getattr(logging, args.log_level)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def open_store(args: argparse.Namespace) -> InfluxStore:
    """The InfluxDB store of the options (the spool replays what an earlier run left)."""
    # The InfluxDB client imports pandas when it can, for a DataFrame client collectors never
    # use: 60 MB of memory and half a second per process. Without it the client falls back to
    # a stub (influxdb/dataframe_client.py), so keep it out unless something loaded it already.
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]
    from pipetune.store.credentials import load_credentials
    from pipetune.store.influx import InfluxStore

    return InfluxStore(
        args.influx_host,
        args.influx_port,
        args.database,
        load_credentials(args.credentials_file),
        args.spool or default_spool(args.collector_name),
        max_delay_s=args.flush_interval,
    )


# --- the loop -------------------------------------------------------------------------------


@dataclass
class StopSignals:
    """While entered, SIGTERM and SIGINT ask to stop instead of killing the process.

    The first one sets `event`; a second one (an impatient Ctrl-C) gets the signal's default
    action, so a stuck step can still be interrupted.
    """

    event: threading.Event = field(default_factory=threading.Event)
    received: str | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signal.Signals(signum).name
        self.event.set()


@dataclass(frozen=True)
class LoopOutcome:
    steps: int
    failures: int  # steps that raised
    stopped_by: str  # "SIGTERM", "SIGINT", "once" or "finished"


def run_until_signalled(
    step: Callable[[], bool | None],
    interval: float,
    *,
    once: bool = False,
    signals: StopSignals | None = None,
    debug: bool = False,
) -> LoopOutcome:
    """Call `step()` at the end of every `interval` seconds until SIGTERM or SIGINT.

    A signal never interrupts a step: the step in progress finishes, then this returns. Steps
    keep a fixed rate; when a step overruns, the ticks it missed are dropped (with a warning),
    so the next step's interval is longer (collectors' windows are contiguous). A step that
    raises is logged and the loop goes on (a collector must outlive a PDU reboot); a step that
    returns False ends the loop. With `once`, one step is taken.
    """
    if signals is None:
        with StopSignals() as own:
            return run_until_signalled(step, interval, once=once, signals=own, debug=debug)
    steps = failures = 0
    next_at = time.monotonic() + interval
    while not signals.event.wait(max(0.0, next_at - time.monotonic())):
        steps += 1
        try:
            more = step()
        except Exception as exc:  # the loop must survive; the log says what went wrong
            failures += 1
            log.warning("interval %d failed: %s", steps, exc, exc_info=debug)
            more = True
        if once:
            return LoopOutcome(steps, failures, "once")
        if more is False:
            return LoopOutcome(steps, failures, "finished")
        next_at += interval
        late = time.monotonic() - next_at
        if late > 0:
            skipped = math.ceil(late / interval)
            next_at += skipped * interval
            log.warning(
                "interval %d overran by %d tick(s): the next point covers them too", steps, skipped
            )
    return LoopOutcome(steps, failures, signals.received or "signal")


def run_collector(args: argparse.Namespace, build: Callable[[], Collector]) -> int:
    """Build, check, start and run a collector, writing its points; the exit status.

    `build` may raise ValueError (bad options) or MeterUnavailable: both exit 2 with the
    message on stderr, as does an unavailable probe.
    """
    setup_logging(args)
    prog = args.collector_name
    with StopSignals() as signals:  # from here on a SIGTERM is orderly, even during start-up
        from pipetune.errors import PipeTuneError

        try:
            collector = build()
        except ValueError as exc:
            return _fail(prog, str(exc))
        except PipeTuneError as exc:
            return _fail(prog, f"cannot measure here: {exc}")
        availability = collector.availability()
        if not availability.ok:
            return _fail(prog, f"cannot measure here: {availability.reason}")
        try:
            store = open_store(args)
        except PipeTuneError as exc:
            return _fail(prog, str(exc))
        try:
            collector.start()
        except PipeTuneError as exc:
            collector.stop()
            _close(store)
            return _fail(prog, f"cannot measure here: {exc}")
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
