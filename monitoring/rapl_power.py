"""CPU package (+ DRAM) power of this node from RAPL, pushed to InfluxDB.

Reads the powercap energy counters once per interval (through
`pipetune.telemetry.rapl.RaplMeter`) and writes one `power` point per interval: tags node,
source=rapl, domain=`package+dram` (or `package` where no DRAM zone exists); fields watts,
joules. `RaplMeter` exposes the energy summed over its domains only, so the point is the sum
over every package and its DRAM zone; per-domain points need an accessor on the meter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python monitoring/rapl_power.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common, options

NAME = "rapl_power"
MAX_INTERVAL_S = 60.0  # counters wrap after ~10 min at full load; one reading per interval
DESCRIPTION = f"""\
Measure this node's CPU package and DRAM power from the RAPL energy counters
(Linux powercap sysfs) and write it to InfluxDB.

Every interval the counters are read once and one `power` point is written (source=rapl,
domain=package+dram, or package where the CPU has no DRAM zone; fields watts and joules):
the sum over all packages and their DRAM zones; core/uncore sub-zones and psys are not
counted (they overlap the packages). Counters wrap around; one reading per interval keeps
that safe up to --interval {MAX_INTERVAL_S:g}. Since Linux 5.10 the counters are readable
by root only: run as root or `chmod a+r` the energy_uj files. Exits 2 where this machine
(or VM) has no RAPL."""
EXAMPLE = "sudo python -m monitoring.rapl_power --interval 1 --influx-host metrics.lan"


def domain_label(root: Path) -> str:
    """`package+dram` or `package`: what the meter sums under `root`.

    Raises:
        MeterUnavailable: no RAPL tree, or it cannot be read.
    """
    from pipetune.telemetry.rapl import discover

    domains = discover(root)
    return "package+dram" if any(d.label.endswith("/dram") for d in domains) else "package"


def build(args: argparse.Namespace) -> common.Collector:
    from pipetune.telemetry.rapl import RaplMeter

    if args.interval > MAX_INTERVAL_S:
        raise ValueError(
            f"--interval: at most {MAX_INTERVAL_S:g} s (RAPL counters wrap), found {args.interval}"
        )

    def make() -> RaplMeter:
        return RaplMeter(args.root, args.interval)

    channel = common.Channel(args.node, domain_label(args.root), make)
    return common.MeterCollector([channel], recycle_s=args.recycle)


def parser() -> argparse.ArgumentParser:
    p = options.build_parser(NAME, DESCRIPTION, EXAMPLE)
    rapl = p.add_argument_group("RAPL")
    rapl.add_argument(
        "--root",
        type=Path,
        default=Path("/sys/class/powercap"),
        metavar="PATH",
        help="the powercap sysfs tree (default %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return common.run_collector(args, lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
