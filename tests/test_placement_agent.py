"""The placement agent (monitoring/placement_agent.py) and its client
(pipetune/placement_agents.py): a real agent process on a free loopback port, real "executors"
(Python processes with `--app-id <id>` in their command line, sleeping threads and a child
process standing for the executor's Python worker), placements checked thread by thread from
/proc. No Spark."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipetune.placement import (
    PlacementError,
    executor_cpus,
    parse_cpu_list,
    remove_group,
    stray_threads,
    thread_cpus,
)
from pipetune.placement_agents import AgentClient
from tests.influxd import free_port
from tests.machine import require_cpuset

ROOT = Path(__file__).resolve().parents[1]
THREADS = 3
# An executor: sleeping threads, a child standing for its Python worker, both alive until the
# test closes the executor's stdin (or dies): the worker ends when its parent's pipe closes.
EXECUTOR = f"""
import subprocess, sys, threading, time
for _ in range({THREADS}):
    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()
worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                          stdin=subprocess.PIPE)
print(worker.pid, flush=True)
sys.stdin.read()
worker.kill()
"""


def all_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def new_app_id() -> str:
    """Unique per test, so that executors of another test run on this machine never match."""
    return f"app-test-1-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def new_job() -> str:
    return f"t001-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# --- executor layout (pure) -----------------------------------------------------------------


def live_settings_rule(cpus: tuple[int, ...], i: int, per: int) -> tuple[int, ...]:
    """The layout LiveSettings.place used before executor_cpus existed (its spec)."""
    return tuple(sorted({cpus[(i * per + k) % len(cpus)] for k in range(per)}))


def test_executor_cpus_lays_executors_side_by_side_and_wraps():
    assert executor_cpus((0, 1, 2, 3), 0, 2) == (0, 1)
    assert executor_cpus((0, 1, 2, 3), 1, 2) == (2, 3)
    assert executor_cpus((0, 1, 2, 3), 2, 2) == (0, 1)  # more executors than CPUs: they share
    assert executor_cpus((0, 1, 2), 1, 2) == (0, 2)  # wraps, sorted
    assert executor_cpus((4, 6, 9), 0, 5) == (4, 6, 9)  # more than there are: all of them
    assert executor_cpus((4, 6, 9), 10**6, 10**12) == (4, 6, 9)  # and cheaply
    assert executor_cpus((7,), 3, 1) == (7,)


def test_executor_cpus_is_the_rule_of_live_settings():
    for cpus in [(0,), (0, 1), (0, 1, 2), (2, 3, 5, 7, 11), tuple(range(8))]:
        for per in range(1, 10):
            for i in range(6):
                assert executor_cpus(cpus, i, per) == live_settings_rule(cpus, i, per)


@pytest.mark.parametrize(
    ("cpus", "index", "per", "message"),
    [((), 0, 1, "no CPUs"), ((0, 1), -1, 1, "index ≥ 0, found -1"), ((0, 1), 0, 0, "found 0")],
)
def test_executor_cpus_rejects(cpus: tuple[int, ...], index: int, per: int, message: str):
    with pytest.raises(ValueError, match=message):
        executor_cpus(cpus, index, per)


# --- processes ------------------------------------------------------------------------------


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    address: str
    log: Path

    @property
    def client(self) -> AgentClient:
        return AgentClient(self.address, timeout_s=10.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_agent(placer: str, log: Path) -> Iterator[Agent]:
    """An agent process on a free loopback port, answering /health; SIGTERM must stop it
    with status 0."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "monitoring.placement_agent"),
                *("--port", str(port), "--placer", placer, "--log-level", "DEBUG"),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    agent = Agent(proc, f"127.0.0.1:{port}", log)
    try:
        probe = AgentClient(agent.address, timeout_s=2.0)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the agent exited with {proc.returncode}:\n{agent.output()}")
            try:
                probe.health()
                break
            except PlacementError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the agent did not answer /health in 30 s:\n{agent.output()}")
                time.sleep(0.05)
        yield agent
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, agent.output()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@dataclass
class Executor:
    proc: subprocess.Popen[str]
    worker: psutil.Process

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid, self.worker.pid]


@contextmanager
def fake_executors(app_id: str, n: int = 2) -> Iterator[list[Executor]]:
    """`n` executor processes of `app_id`, sorted by pid, each with THREADS sleeping threads
    and a worker child."""
    started: list[Executor] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, "-c", EXECUTOR, "--app-id", app_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.isdigit(), f"the executor printed {line!r}"
            started.append(Executor(proc, psutil.Process(int(line))))
        for executor in started:
            deadline = time.monotonic() + 10
            while len(thread_cpus(executor.proc.pid)) < THREADS + 1:
                assert time.monotonic() < deadline, "the executor's threads did not start"
                time.sleep(0.01)
        yield sorted(started, key=lambda e: e.proc.pid)
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()  # the executor ends, then its worker
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for executor in started:
            try:
                executor.worker.kill()
                executor.worker.wait(timeout=10)
            except psutil.NoSuchProcess:
                pass
            if executor.proc.stdout is not None:
                executor.proc.stdout.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with running_agent("affinity", tmp_path_factory.mktemp("agent") / "agent.log") as running:
        yield running


def expected_layout(per: int, executors: int = 2) -> list[list[int]]:
    """Executor i on the CPUs from position i × per on, wrapping: spelled out, not computed
    by the function under test."""
    cpus = all_cpus()
    if per == 1:
        if len(cpus) >= 2:
            return [[cpus[0]], [cpus[1]]][:executors]
        return [[cpus[0]]] * executors  # one CPU: they share it
    assert per >= len(cpus)
    return [list(cpus)] * executors


def assert_on(executor: Executor, cpus: list[int]) -> None:
    """Every thread of the executor and of its worker may run on exactly `cpus`."""
    want = frozenset(cpus)
    threads = thread_cpus(executor.proc.pid)
    assert len(threads) >= THREADS + 1
    assert set(threads.values()) == {want}
    assert set(thread_cpus(executor.worker.pid).values()) == {want}
    assert stray_threads(executor.pids, cpus) == []


# --- the agent, through its client ----------------------------------------------------------


def test_health_says_the_placer_and_the_cpus(agent: Agent):
    health = agent.client.health()
    assert health["ok"] is True
    assert health["placer"] == "affinity"
    assert health["cpus"] == list(all_cpus())  # the agent's own affinity, inherited from here
    assert health["host"] == socket.gethostname()


def test_place_puts_each_executor_on_its_own_cpus_then_release(agent: Agent):
    app_id, job = new_app_id(), new_job()
    client = agent.client
    with fake_executors(app_id) as executors:
        for executor in executors:
            assert_on(executor, list(all_cpus()))  # launched on every CPU

        one = expected_layout(1)
        assert client.place(job, app_id, 1) == {"placed": 2, "cpus": one, "placer": "affinity"}
        for executor, cpus in zip(executors, one, strict=True):
            assert_on(executor, cpus)
        if len(all_cpus()) >= 2:
            assert set(one[0]).isdisjoint(one[1])
        else:
            assert one[0] == one[1]
        assert client.health()["jobs"][job] == 2

        # more CPUs each than the host has: the layout wraps, every executor on all of them
        wide = expected_layout(len(all_cpus()))
        assert client.place(job, app_id, len(all_cpus()))["cpus"] == wide
        for executor, cpus in zip(executors, wide, strict=True):
            assert_on(executor, cpus)

        assert client.release(job) == {"released": 2}
        assert client.release(job) == {"released": 0}  # forgotten once released
        assert job not in client.health()["jobs"]


def test_place_of_an_app_without_executors_here_fails_naming_it(agent: Agent):
    app_id = new_app_id()
    with pytest.raises(PlacementError, match=rf"{app_id}.*\(HTTP 404\)") as caught:
        agent.client.place(new_job(), app_id, 1)
    assert agent.address in str(caught.value)
    assert agent.client.release("never-placed") == {"released": 0}


def raw_request(address: str, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
    """(status, decoded JSON answer), without the client."""
    request = urllib.request.Request(f"http://{address}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"job": "j1", "app_id": "app-1"},
            '"cores_per_executor": expected an integer ≥ 1, found nothing \\(missing\\)',
        ),
        (
            {"job": "j1", "cores_per_executor": 1},
            '"app_id": expected a non-empty string, found nothing',
        ),
        (
            {"job": "j1", "app_id": "app-1", "cores_per_executor": "2"},
            '"cores_per_executor": expected an integer ≥ 1, found "2"',
        ),
        ({"job": "j1", "app_id": "app-1", "cores_per_executor": True}, "found true"),
        ({"job": "j1", "app_id": "app-1", "cores_per_executor": 0}, "found 0"),
        (
            {"job": "../../x", "app_id": "app-1", "cores_per_executor": 1},
            '"job": expected a job name of letters.*found "../../x"',
        ),
        ({"job": 7, "app_id": "app-1", "cores_per_executor": 1}, '"job": expected .* found 7'),
        ([1, 2], "request body: expected a JSON object, found list"),
        (b"{not json", "request body: expected a JSON object, found Expecting property name"),
    ],
)
def test_a_malformed_place_request_is_400_naming_the_field(agent: Agent, body: Any, says: str):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = raw_request(agent.address, "POST", "/place", raw)
    assert status == 400
    assert set(answer) == {"error"}
    assert re.search(says, answer["error"]), answer["error"]


def test_wrong_endpoints_and_methods_are_refused(agent: Agent):
    status, answer = raw_request(agent.address, "GET", "/nowhere", None)
    assert status == 404 and "GET /nowhere" in answer["error"]
    status, answer = raw_request(agent.address, "GET", "/place", None)
    assert status == 405 and "/place takes POST" in answer["error"]
    status, answer = raw_request(agent.address, "POST", "/release", b"")
    assert status == 400 and "request body" in answer["error"]


def test_a_second_agent_on_a_taken_port_exits_2(agent: Agent):
    port = agent.address.rsplit(":", 1)[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.placement_agent",
            "--port",
            port,
            "--placer",
            "affinity",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in done.stderr


# --- the client against what is not an agent ------------------------------------------------


def test_client_of_an_agent_that_is_not_running_names_the_address():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(PlacementError, match=rf"placement agent at {address}.*cannot reach it"):
        AgentClient(address, timeout_s=2.0).health()


def test_client_gives_up_after_its_timeout():
    with socket.socket() as listener:  # accepts connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(PlacementError, match=rf"{address}.*no answer within 0.3 s"):
            AgentClient(address, timeout_s=0.3).place("j1", "app-1", 1)
        assert time.monotonic() - started < 5


class _NotAnAgent(BaseHTTPRequestHandler):
    """Answers every GET with the server's `answer`: (status, body)."""

    server: _NotAnAgentServer

    def do_GET(self) -> None:
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _NotAnAgentServer(HTTPServer):
    answer: tuple[int, bytes] = (200, b"")


@contextmanager
def not_an_agent() -> Iterator[_NotAnAgentServer]:
    server = _NotAnAgentServer(("127.0.0.1", 0), _NotAnAgent)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (200, b"hello", r"expected a JSON answer, found 'hello'"),
        (200, b"[1]", r"expected a JSON object, found '\[1\]'"),
        (200, b"", r"expected a JSON answer, found an empty body"),
        (502, b"<html>bad gateway</html>", r"'<html>bad gateway</html>' \(HTTP 502\)"),
        (500, b'{"error": "it broke"}', r"\(GET /health\): it broke \(HTTP 500\)"),
    ],
)
def test_client_reports_answers_that_are_not_an_agents(status: int, body: bytes, says: str):
    with not_an_agent() as server:
        server.answer = (status, body)
        address = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(PlacementError, match=rf"placement agent at {address} .*{says}"):
            AgentClient(address).health()


# --- cgroup v1 cpusets ----------------------------------------------------------------------


def test_cgroup_agent_puts_each_executor_in_its_own_cpuset(tmp_path: Path):
    root = require_cpuset()
    app_id, job = new_app_id(), new_job()
    groups = [root / f"pipetune-{job}-e{i}" for i in range(2)]
    try:
        with (
            running_agent("cgroup", tmp_path / "agent.log") as agent,
            fake_executors(app_id) as executors,
        ):
            client = agent.client
            assert client.health()["placer"] == "cgroup-v1-cpuset"
            one = expected_layout(1)
            assert client.place(job, app_id, 1) == {
                "placed": 2,
                "cpus": one,
                "placer": "cgroup-v1-cpuset",
            }
            for executor, group, cpus in zip(executors, groups, one, strict=True):
                assert parse_cpu_list((group / "cpuset.cpus").read_text()) == set(cpus)
                members = (group / "cgroup.procs").read_text().split()
                assert {str(pid) for pid in executor.pids} <= set(members)
                assert_on(executor, cpus)
            assert client.release(job) == {"released": 2}
            assert not any(group.exists() for group in groups)
            for executor in executors:  # back in the root cpuset, still running
                assert str(executor.proc.pid) in (root / "cgroup.procs").read_text().split()
    finally:
        for group in groups:
            remove_group(group, root)


def test_live_settings_place_a_clusters_executors_here_and_through_the_agents(
    agent: Agent, tmp_path: Path
) -> None:
    """The backend's side: on a spark:// master, LiveSettings places the executors of this
    host itself and asks every configured agent to place those of its host (here the same
    host, so both reach the same executors, on the same CPUs)."""
    from pipetune.backends.live import LiveSettings
    from pipetune.config import load_config
    from pipetune.placement import AffinityPlacer
    from pipetune.records import SystemSetting
    from tests.conftest import write_project

    address = agent.address.removeprefix("http://")
    conf = write_project(
        tmp_path, app={"master": "spark://127.0.0.1:7077", "placementAgents": [address]}
    )
    live = LiveSettings(load_config(conf).app, all_cpus(), AffinityPlacer())
    app_id, job = new_app_id(), new_job()
    with fake_executors(app_id) as executors:
        said = live.place(job, SystemSetting.of({"cores": "1"}), 0, app_id)
        assert "2 executor(s) here and 2 on 1 other host(s), 1 CPU(s) each" in said
        for executor, cpus in zip(executors, expected_layout(1), strict=True):
            assert_on(executor, cpus)
        live.release(job)
        assert job not in agent.client.health()["jobs"]


def test_placement_agents_must_be_host_port(tmp_path: Path) -> None:
    from pipetune.config import load_config
    from pipetune.errors import ConfigError
    from tests.conftest import write_project

    conf = write_project(tmp_path, app={"placementAgents": ["node1", 8789]})
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    assert "placementAgents" in str(info.value) and '"host:port"' in str(info.value)
