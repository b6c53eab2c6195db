"""Places the executors of a Spark application on this worker's CPUs when the tuner asks.

The tuner re-pins the executors on its own host itself (`pipetune.backends.live`); executors
on other hosts are re-pinned by this agent, one per worker, through a small HTTP JSON API
(client: `pipetune.placement_agents.AgentClient`):

* `POST /place {"job", "app_id", "cores_per_executor"}`: the executors of `app_id` here
  (processes with `--app-id <app_id>` in their command line, with their children), sorted by
  pid; executor i goes on `executor_cpus(cpus, i, cores_per_executor)` under the job name
  `<job>-e<i>`, and the placer checks every thread. 200 `{"placed", "cpus", "placer"}`;
  400 a malformed request, 404 no executor of that app here, 409 the placement failed.
* `POST /release {"job"}`: undo what `place` made for the job (its cpusets). `{"released"}`.
* `GET /health`: `{"ok": true, "placer", "cpus", "host", "jobs"}`.

Writes nothing to InfluxDB. There is no authentication: bind it to the cluster network only.

This module is the daemon and its options; `placement_service.py` does what the endpoints ask,
`placement_http.py` serves them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python monitoring/placement_agent.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common, loop, options
from monitoring.placement_http import AgentServer
from monitoring.placement_service import Agent
from pipetune.placement import PlacementError, cpu_list, detect_placer, parse_cpu_list

log = logging.getLogger("monitoring.placement_agent")

NAME = "placement_agent"
DEFAULT_PORT = 8789
DESCRIPTION = """\
Place the executors of a Spark application running on this worker on their own CPUs when
the PipeTune tuner asks (a live change of `cores`), and undo it at the end of the job.

Run one on every worker of a standalone cluster, listening on the cluster network; the tuner
handles the executors on its own host itself. Executor i of the application here (sorted by
pid) gets the --cpus from position i × cores_per_executor on, as on the tuner's host.

endpoints (JSON in, JSON out):
  POST /place    {"job": str, "app_id": str, "cores_per_executor": int}
                 → {"placed": n, "cpus": [[...], ...], "placer": name}
                 400 malformed request, 404 no executor of app_id here, 409 placement failed
  POST /release  {"job": str} → {"released": n}
  GET  /health   → {"ok": true, "placer": name, "cpus": [...], "host": name, "jobs": {...}}

Writes nothing to InfluxDB. No authentication: bind --host to the cluster network only."""
EXAMPLE = "sudo .venv/bin/python -m monitoring.placement_agent --host 10.0.0.12 --port 8789"
EXIT_HELP = """\
exit status: 0 stopped by SIGTERM/SIGINT (placements stay as they are); 2 bad options, the
  placer asked for is unavailable, or the address cannot be listened on (reason on stderr)."""


def cpus_option(text: str) -> tuple[int, ...]:
    try:
        cpus = parse_cpu_list(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a CPU list such as 0-3,6, found {text!r}"
        ) from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected a CPU list such as 0-3,6, found {text!r}")
    return tuple(sorted(cpus))


def port_option(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, found {text!r}")
    return port


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m monitoring.{NAME}",
        description=DESCRIPTION,
        epilog=f"example:\n  {EXAMPLE}\n\n{EXIT_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: this worker's cluster-network address (default %(default)s, "
        "reachable from this host only)",
    )
    p.add_argument(
        "--port",
        type=port_option,
        default=DEFAULT_PORT,
        help="default %(default)s; 0 picks a free one (logged)",
    )
    p.add_argument(
        "--placer",
        choices=["auto", "cgroup", "affinity"],
        default="auto",
        help="cgroup: a v1 cpuset per executor (root), fail if unavailable; affinity: "
        "sched_setaffinity on every thread; auto: cgroup where usable, else affinity "
        "(default %(default)s)",
    )
    p.add_argument(
        "--cpus",
        type=cpus_option,
        metavar="LIST",
        help="the CPUs executors are laid out on, e.g. 0-15 (default: the agent's own affinity, "
        f"here {cpu_list(os.sched_getaffinity(0))})",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--debug", action="store_true", help="log tracebacks and every request")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options.setup_logging(args)
    with loop.StopSignals() as signals:  # from here on a SIGTERM is orderly
        try:
            placer, why = detect_placer(args.placer)
        except PlacementError as exc:
            return _fail(str(exc))
        agent = Agent(placer, args.cpus or tuple(sorted(os.sched_getaffinity(0))))
        try:
            server = AgentServer((args.host, args.port), agent)
        except OSError as exc:
            return _fail(f"cannot listen on {args.host} port {args.port}: {exc}")
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        log.info(
            "%s: listening on %s port %s; CPUs %s; %s", NAME, host, port, cpu_list(agent.cpus), why
        )
        signals.event.wait()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    jobs = agent.health()["jobs"]
    log.info(
        "%s: stopped (%s)%s",
        NAME,
        signals.received or "signal",
        f"; left in place: {', '.join(jobs)}" if jobs else "",
    )
    return common.EXIT_OK


def _fail(message: str) -> int:
    print(f"{NAME}: {message}", file=sys.stderr)
    return common.EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
