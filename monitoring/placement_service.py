"""What the placement agent's endpoints do (`Agent`), and the errors they answer with.

`placement_agent.py` is the daemon and its options; `placement_http.py` serves these over HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from pipetune.errors import PipeTuneError
from pipetune.placement import PlacementError, Placer, cpu_list, executor_cpus
from pipetune.telemetry.estimate import executor_groups

log = logging.getLogger("monitoring.placement_agent")  # one logger for the whole daemon

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # part of a cgroup directory name


class RequestError(Exception):
    """A request the agent answers with an error status and `{"error": message}`."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
            HTTPStatus.BAD_REQUEST, f'"{name}": expected {expected}, found {shown(value)}'
        )
    return value


def shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
