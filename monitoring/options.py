"""The options every collector takes (sampling, the InfluxDB target), its logging and its store.

Heavy imports (the InfluxDB client requests) happen inside functions, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipetune.store import schema_power

if TYPE_CHECKING:
    from pipetune.store.influx import InfluxStore

DEFAULT_DATABASE = "pipetune"
DEFAULT_INFLUX_PORT = 8086


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
    _add_sampling_options(parser, default_interval, node_option)
    _add_store_options(parser, name)
    return parser


def _add_sampling_options(
    parser: argparse.ArgumentParser, default_interval: float, node_option: bool
) -> None:
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


def _add_store_options(parser: argparse.ArgumentParser, name: str) -> None:
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
