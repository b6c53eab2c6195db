"""Processor (+ DRAM) power of this node from Intel PCM's CSV output, pushed to InfluxDB.

Follows the file `pcm.x <delay> -csv=<file>` writes (through `pipetune.telemetry.pcm.PcmMeter`)
and writes one `power` point per interval: tags node, source=pcm, domain=`package` (or
`package+dram` with --include-dram); fields watts, joules (the rows' energy, prorated to the
interval).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python monitoring/pcm_power.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common, options

NAME = "pcm_power"
DESCRIPTION = """\
Measure this node's processor energy from Intel PCM's CSV output and write its power to
InfluxDB.

Start pcm first, as root: `pcm.x 0.5 -csv=/var/log/pcm.csv`. The file is followed as pcm
appends to it; every interval one `power` point is written (source=pcm, domain=package, or
package+dram with --include-dram; fields watts and joules), from the system column
"Proc Energy (Joules)" (or the sum of the sockets' columns), prorated to the interval. pcm
prints local times without a zone, so the zone is needed (--timezone, default this
machine's). Each interval ends when pcm's row for it arrives: keep --interval at least pcm's
delay. A new pcm run that replaces the file is followed from its start."""
EXAMPLE = (
    "python -m monitoring.pcm_power --csv /var/log/pcm.csv --timezone Europe/Zurich "
    "--influx-host metrics.lan"
)


def local_timezone() -> str | None:
    """The IANA name of this machine's zone: $TZ, /etc/timezone, or /etc/localtime's link."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        candidates.append(target.split("/zoneinfo/", 1)[1])
    for name in candidates:
        if not name or name.startswith("/"):
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return None


def build(args: argparse.Namespace) -> common.Collector:
    from pipetune.telemetry.pcm import PcmMeter

    timezone = args.timezone or local_timezone()
    if timezone is None:
        raise ValueError("--timezone: cannot tell this machine's zone; give an IANA name")

    def make() -> PcmMeter:
        return PcmMeter(
            args.csv,
            timezone,
            min(0.2, args.interval),  # how often energy() re-reads while waiting for a row
            include_dram=args.include_dram,
            settle_s=args.settle,
        )

    make()  # a bad zone is an option error (exit 2), found before the loop starts
    domain = "package+dram" if args.include_dram else "package"
    return common.MeterCollector([common.Channel(args.node, domain, make)], recycle_s=args.recycle)


def parser() -> argparse.ArgumentParser:
    p = options.build_parser(NAME, DESCRIPTION, EXAMPLE)
    pcm = p.add_argument_group("PCM")
    pcm.add_argument("--csv", type=Path, required=True, metavar="PATH", help="pcm's CSV output")
    pcm.add_argument(
        "--timezone",
        metavar="IANA",
        help="zone of the times pcm prints, e.g. Europe/Zurich (default: this machine's, "
        f"{local_timezone() or 'unknown'})",
    )
    pcm.add_argument(
        "--include-dram",
        action="store_true",
        help='add "DRAM Energy (Joules)" (domain package+dram)',
    )
    pcm.add_argument(
        "--settle",
        type=options.positive_float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for pcm's row that closes an interval (default %(default)g)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return common.run_collector(args, lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
