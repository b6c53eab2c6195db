"""Wall power of whole nodes from a metered PDU, pushed to InfluxDB.

Reads the PDU's HTTP JSON status page once per interval per node (through
`pipetune.telemetry.pdu.PduMeter`) and writes one `power` point per node per interval:
tags node, source=pdu, domain=wall; fields watts (mean over the interval), joules. Which
outlet feeds which node is configuration: `--outlet NODE=N` and/or `--outlets-file`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python monitoring/pdu_power.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common, options
from pipetune.store import schema_power

NAME = "pdu_power"
DESCRIPTION = """\
Measure the wall power of cluster nodes at a metered PDU and write it to InfluxDB.

Every interval the PDU's JSON status page is read (one request per node) and each node's
mean power over the interval is written as one `power` point (source=pdu, domain=wall,
fields watts and joules) tagged with the node's name. The outlet → node map comes from
--outlet and --outlets-file; outlet indices are 0-based (the unit's port 1 is outlet 0), as
in pipetune.conf's powerMeter.outlets."""
EXAMPLE = (
    "python -m monitoring.pdu_power --url http://pdu.lan --outlet node1=0 --outlet node2=3 "
    "--influx-host metrics.lan"
)


def parse_outlets(pairs: Sequence[str], outlets_file: Path | None) -> dict[str, int]:
    """node → outlet from `NODE=N` pairs and a JSON file `{"node": N, ...}`; pairs win.

    Raises:
        ValueError: naming every malformed pair or entry, and outlets given to two nodes.
    """
    problems: list[str] = []
    outlets: dict[str, int] = {}
    if outlets_file is not None:
        try:
            raw = json.loads(outlets_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--outlets-file {outlets_file}: {exc}") from exc
        if not isinstance(raw, dict):
            problems.append(
                f"--outlets-file {outlets_file}: expected an object {{node: outlet}}, "
                f"found {type(raw).__name__}"
            )
            raw = {}
        for node, index in raw.items():
            if isinstance(index, bool) or not isinstance(index, int) or index < 0 or not node:
                problems.append(
                    f"--outlets-file {outlets_file}: {node!r}: expected an outlet index ≥ 0, "
                    f"found {index!r}"
                )
            else:
                outlets[node] = index
    for pair in pairs:
        node, sep, index_text = pair.partition("=")
        node = node.strip()
        if not sep or not node or not index_text.strip().isdigit():
            problems.append(f"--outlet {pair!r}: expected NODE=N with N an outlet index ≥ 0")
            continue
        outlets[node] = int(index_text)
    by_outlet: dict[int, list[str]] = {}
    for node, index in outlets.items():
        by_outlet.setdefault(index, []).append(node)
    for index, nodes in sorted(by_outlet.items()):
        if len(nodes) > 1:
            problems.append(f"outlet {index} is given to several nodes: {', '.join(nodes)}")
    if not outlets and not problems:
        problems.append("no outlets: give --outlet NODE=N (repeatable) or --outlets-file")
    if problems:
        raise ValueError("invalid outlet map:\n" + "\n".join(f"  - {p}" for p in problems))
    return outlets


def build(args: argparse.Namespace) -> common.Collector:
    """One channel (one `PduMeter` of one outlet) per node: the meter sums its outlets."""
    from pipetune.telemetry.pdu import PduMeter

    outlets = parse_outlets(args.outlet, args.outlets_file)

    def channel(node: str, index: int) -> common.Channel:
        def make() -> PduMeter:
            return PduMeter(args.url, {node: index}, args.interval, args.timeout, model=args.model)

        return common.Channel(node, schema_power.WALL, make)

    channels = [channel(node, index) for node, index in outlets.items()]
    return common.MeterCollector(channels, recycle_s=args.recycle)


def parser() -> argparse.ArgumentParser:
    p = options.build_parser(NAME, DESCRIPTION, EXAMPLE, node_option=False)
    pdu = p.add_argument_group("PDU")
    pdu.add_argument("--url", required=True, help="the PDU's base URL, e.g. http://10.0.0.5")
    pdu.add_argument(
        "--outlet",
        action="append",
        default=[],
        metavar="NODE=N",
        help="node NODE is plugged into outlet N (0-based); repeat for each node",
    )
    pdu.add_argument(
        "--outlets-file",
        type=Path,
        metavar="PATH",
        help='JSON object {"node": outlet, ...}; --outlet entries override it',
    )
    pdu.add_argument("--model", default="lindy-ipower", help="PDU model (default %(default)s)")
    pdu.add_argument(
        "--timeout",
        type=options.positive_float,
        default=2.0,
        metavar="SECONDS",
        help="HTTP timeout per request (default %(default)g)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return common.run_collector(args, lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
