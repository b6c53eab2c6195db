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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as `python monitoring/placement_agent.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import common
from pipetune.errors import PipeTuneError
from pipetune.placement import (
    PlacementError,
    Placer,
    cpu_list,
    detect_placer,
    executor_cpus,
    parse_cpu_list,
)
from pipetune.telemetry.estimate import executor_groups

log = logging.getLogger("monitoring.placement_agent")

NAME = "placement_agent"
DEFAULT_PORT = 8789
MAX_BODY = 64 * 1024
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # part of a cgroup directory name
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


class RequestError(Exception):
    """A request the agent answers with an error status and `{"error": message}`."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- the agent ------------------------------------------------------------------------------


class Agent:
    """What the endpoints do: the placer, this host's CPUs, the executors placed per job."""

    def __init__(
        self,
        placer: Placer,
        cpus: tuple[int, ...],
        find: Callable[[str], list[list[int]]] = executor_groups,
    ) -> None:
        if not cpus:
            raise ValueError("the agent needs at least one CPU")
        self.placer = placer
        self.cpus = cpus
        self.host = socket.gethostname()
        self._find = find
        self._jobs: dict[str, int] = {}  # job → executors placed (job names <job>-e0 …)
        self._lock = threading.Lock()  # one placement or release at a time

    def health(self) -> dict[str, Any]:
        with self._lock:
            jobs = dict(self._jobs)
        return {
            "ok": True,
            "placer": self.placer.name,
            "cpus": list(self.cpus),
            "host": self.host,
            "jobs": jobs,
        }

    def place(self, body: dict[str, Any]) -> dict[str, Any]:
        job = _job_field(body)
        app_id = _field(body, "app_id", "a non-empty string", lambda v: isinstance(v, str) and v)
        per = _field(
            body,
            "cores_per_executor",
            "an integer ≥ 1",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        )
        with self._lock:
            groups = self._find(app_id)
            if not groups:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"no executor of application {app_id!r} runs on {self.host}: no process "
                    f"has `--app-id {app_id}` in its command line",
                )
            placed: list[list[int]] = []
            for i, pids in enumerate(groups):
                cpus = executor_cpus(self.cpus, i, per)
                # remembered first, so that a release undoes a placement that failed half-way
                self._jobs[job] = max(self._jobs.get(job, 0), i + 1)
                try:
                    self.placer.place(f"{job}-e{i}", pids, cpus)
                except PlacementError as exc:
                    raise RequestError(
                        HTTPStatus.CONFLICT,
                        f"executor {i} of {app_id} (pid {pids[0]}, {len(pids)} process(es)) "
                        f"on CPUs {cpu_list(cpus)} of {self.host}: {exc}",
                    ) from exc
                placed.append(list(cpus))
        log.info(
            "placed %d executor(s) of %s for job %s: %s (%s)",
            len(placed),
            app_id,
            job,
            " ".join(cpu_list(c) for c in placed),
            self.placer.name,
        )
        return {"placed": len(placed), "cpus": placed, "placer": self.placer.name}

    def release(self, body: dict[str, Any]) -> dict[str, Any]:
        job = _job_field(body)
        with self._lock:
            n = self._jobs.pop(job, 0)
            try:
                for i in range(n):
                    self.placer.release(f"{job}-e{i}")
            except PipeTuneError as exc:
                raise RequestError(HTTPStatus.CONFLICT, f"release of {job}: {exc}") from exc
        if n:
            log.info("released %d executor(s) of job %s", n, job)
        return {"released": n}


def _job_field(body: dict[str, Any]) -> str:
    value: str = _field(
        body,
        "job",
        "a job name of letters, digits, '.', '_' or '-' (at most 100, not starting with '.')",
        lambda v: isinstance(v, str) and JOB_NAME.fullmatch(v) is not None,
    )
    return value


def _field(body: dict[str, Any], name: str, expected: str, ok: Callable[[Any], Any]) -> Any:
    if name not in body:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'"{name}": expected {expected}, found nothing (missing)'
        )
    value = body[name]
    if not ok(value):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'"{name}": expected {expected}, found {_show(value)}'
        )
    return value


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- HTTP -----------------------------------------------------------------------------------


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: Agent) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.agent = agent
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "pipetune-placement-agent/1"
    timeout = 30  # a client that stops sending mid-request does not hold a thread for ever

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        agent = self.server.agent
        endpoints: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
            "/health": ("GET", agent.health),
            "/place": ("POST", lambda: agent.place(self._body())),
            "/release": ("POST", lambda: agent.release(self._body())),
        }
        path = urlsplit(self.path).path
        try:
            if path not in endpoints:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"no endpoint {method} {path}; there are GET /health, POST /place, "
                    "POST /release",
                )
            allowed, action = endpoints[path]
            if method != allowed:
                raise RequestError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {allowed}, not {method}"
                )
            self._answer(HTTPStatus.OK, action())
        except RequestError as exc:
            log.warning("%s %s from %s: %s", method, path, self.client_address[0], exc.message)
            self._answer(exc.status, {"error": exc.message})
        except Exception as exc:  # the agent must outlive a bug; the client gets the message
            log.exception("%s %s failed", method, path)
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc}"})

    def _body(self) -> dict[str, Any]:
        """The request's JSON object."""
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text or "")
        except ValueError:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                "request body: expected a JSON object with a Content-Length header, found "
                f"Content-Length {length_text!r}",
            ) from None
        if not 0 <= length <= MAX_BODY:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body: expected at most {MAX_BODY} bytes, found {length}",
            )
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"request body: expected a JSON object, found {exc}"
            ) from None
        if not isinstance(body, dict):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"request body: expected a JSON object, found {type(body).__name__} {_show(body)}",
            )
        return body

    def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError as exc:  # the client went away
            log.debug("answer to %s lost: %s", self.client_address[0], exc)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)


# --- options and main -----------------------------------------------------------------------


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
    common.setup_logging(args)
    with common.StopSignals() as signals:  # from here on a SIGTERM is orderly
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
