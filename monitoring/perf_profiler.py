"""`perf stat` event rates of this node (or of some processes), pushed to InfluxDB.

Counts through `pipetune.telemetry.perf_stat.PerfStat`, one perf run per interval, and writes one
`counters` point per event per interval: tags node, event, source=perf; field rate_per_s (the
mean rate over the interval, from `profile.profile_window`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as `python monitoring/perf_profiler.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common, options
from pipetune.store import schema_power

if TYPE_CHECKING:
    from pipetune.store.base import Point
    from pipetune.telemetry.meter import Availability
    from pipetune.telemetry.perf_stat import PerfStat

NAME = "perf_profiler"
SOURCE = "perf"
DESCRIPTION = """\
Count hardware and software events with `perf stat` on this node and write their rates to
InfluxDB.

System-wide by default (everything on the node; needs root or kernel.perf_event_paranoid
<= 0), or only the processes given with --pid (and the threads and children they start; the
collector ends when they have all exited). Every interval one `counters` point per event is
written (source=perf, field rate_per_s: the mean count per second over the interval;
task-clock is in msec/s). Events this machine cannot count (hardware events in most VMs)
are left out, with a note in the log; exits 2 if none can be counted or perf is missing.
perf is restarted at each interval's end; the next run is started before the previous one
is stopped, so at most the few ms perf takes to start counting go uncounted."""
EXAMPLE = "sudo python -m monitoring.perf_profiler --interval 5 --influx-host metrics.lan"


class PerfCollector(common.Collector):
    """One `PerfStat` per interval: the next one starts before the previous one stops."""

    def __init__(self, node: str, events: Sequence[str], pids: Sequence[int] | None) -> None:
        if not events:
            raise ValueError("--events: expected at least one event")
        if pids and (bad := [p for p in pids if p <= 0]):
            raise ValueError(f"--pid: expected process ids > 0, found {bad}")
        self.node = node
        self.requested = tuple(dict.fromkeys(events))
        self.events: tuple[str, ...] = ()
        self.pids = tuple(pids) if pids else None
        self._perf: PerfStat | None = None

    def availability(self) -> Availability:
        from pipetune.telemetry.meter import Availability
        from pipetune.telemetry.perf_events import detect_events

        if self.pids is not None and not self._alive():
            return Availability(False, f"no process {', '.join(map(str, self.pids))}")
        support = detect_events(self.requested)
        if not support.perf_available:
            return Availability(False, support.reason)
        if not support.supported:
            reasons = "; ".join(f"{e}: {why}" for e, why in support.unsupported.items())
            return Availability(False, f"perf can count none of the events here ({reasons})")
        self.events = support.supported
        if support.unsupported:
            common.log.info(
                "not counted on this machine: %s",
                ", ".join(f"{e} ({why})" for e, why in support.unsupported.items()),
            )
        return Availability(True)

    def describe(self) -> str:
        scope = "system-wide" if self.pids is None else f"pids {', '.join(map(str, self.pids))}"
        return f"perf stat {scope}: {', '.join(self.events or self.requested)}"

    def start(self) -> None:
        self._perf = self._spawn(self.pids)

    def collect(self) -> list[Point]:
        from pipetune.telemetry.perf_parse import parse_interval_csv
        from pipetune.telemetry.profile import ProfileError, profile_window

        previous, self._perf = self._perf, None
        pids = self.pids
        if pids is not None:
            pids = self._alive()
            self.finished = not pids
            if self.finished:
                common.log.info("every counted process has exited: stopping")
            elif pids != self.pids:
                common.log.info("still counting pids %s", ", ".join(map(str, pids)))
        if not self.finished:
            self._perf = self._spawn(pids)  # before stopping the previous: no gap to speak of
        if previous is None:
            return []
        samples = parse_interval_csv(previous.stop())
        if not samples or previous.started_at is None:
            return []
        last = max(s.time_s for s in samples)
        try:
            profile = profile_window(samples, 0.0, last)
        except ProfileError as exc:
            common.log.warning("no rates this interval: %s", exc)
            return []
        end_ns = schema_power.seconds_to_ns(previous.started_at + last)
        return [
            schema_power.counter_point(self.node, event, SOURCE, rate, end_ns)
            for event, rate in profile.features.items()
        ]

    def stop(self) -> None:
        perf, self._perf = self._perf, None
        if perf is not None:
            perf.close()

    def _spawn(self, pids: Sequence[int] | None) -> PerfStat:
        from pipetune.telemetry.perf_stat import PerfStat

        return PerfStat(self.events, pids).start()

    def _alive(self) -> tuple[int, ...]:
        import psutil

        return tuple(p for p in self.pids or () if psutil.pid_exists(p))


def build(args: argparse.Namespace) -> common.Collector:
    from pipetune.telemetry.perf_events import DEFAULT_EVENTS

    events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
    return PerfCollector(args.node, events or DEFAULT_EVENTS, args.pid or None)


def parser() -> argparse.ArgumentParser:
    p = options.build_parser(NAME, DESCRIPTION, EXAMPLE, writes=schema_power.COUNTERS)
    perf = p.add_argument_group("perf")
    perf.add_argument(
        "--pid",
        type=int,
        action="append",
        metavar="PID",
        help="count this process (and what it starts) instead of the whole node; repeatable",
    )
    perf.add_argument(
        "--events",
        metavar="E1,E2,...",
        help="events to count (default: generic hardware events and the kernel's software "
        "events, those this machine supports)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return common.run_collector(args, lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
