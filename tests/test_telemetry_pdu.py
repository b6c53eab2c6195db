"""PDU meter against a real HTTP server serving the Lindy iPower status JSON."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipetune.telemetry.meter import MeterUnavailable
from pipetune.telemetry.pdu import PduMeter, lindy_outlet_watts

SAMPLE = Path(__file__).parent / "data" / "telemetry" / "lindy_ipower_status.json"


@dataclass
class PduState:
    """What the fake PDU serves: the recorded document with outlet powers overridden."""

    watts: dict[int, float] = field(default_factory=dict)
    mode: str = "json"  # json | html | slow
    requests: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        doc = copy.deepcopy(json.loads(SAMPLE.read_text()))
        for outlet, value in self.watts.items():
            doc["sensor_values"][1]["values"][outlet][4]["v"] = value
        return doc


class Handler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:
        state: PduState = self.server.state
        state.requests.append(self.path)
        if state.mode == "slow":
            time.sleep(0.3)
        body = b"<html>login</html>" if state.mode == "html" else json.dumps(state.document())
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pdu() -> Iterator[tuple[str, PduState]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = PduState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.state  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_recorded_status_reads_active_power_per_outlet() -> None:
    doc = json.loads(SAMPLE.read_text())
    assert [lindy_outlet_watts(doc, k) for k in (0, 3, 5, 11)] == [87.0, 142.0, 61.0, 3.0]


def test_two_nodes_summed_constant_then_step_matches_the_analytic_energy(
    pdu: tuple[str, PduState],
) -> None:
    url, state = pdu
    clock = FakeClock(10.0)
    meter = PduMeter(url, {"node1": 0, "node2": 3}, clock=clock)
    # node1: 100 W throughout. node2: 50 W, stepping to 150 W at t = 12.5 (between samples).
    for t in range(10, 16):
        clock.now = float(t)
        state.watts = {0: 100.0, 3: 50.0 if t <= 12 else 150.0}
        meter.poll()
    assert state.requests[0] == "/statusjsn.js?components=16384"
    energy = meter.energy(10.0, 15.0)
    assert (energy.source, energy.joules) == ("pdu", pytest.approx(500.0 + 2.5 * 50 + 2.5 * 150))
    # edges between samples, the step inside the window: 3.75 s of node1, 2 s + 1.75 s of node2
    assert meter.energy(10.5, 14.25).joules == pytest.approx(375.0 + 2.0 * 50 + 1.75 * 150)
    # before the step only
    assert meter.energy(10.25, 11.75).joules == pytest.approx(1.5 * 150.0)


def test_window_not_covered_names_the_node_and_the_gap(pdu: tuple[str, PduState]) -> None:
    url, state = pdu
    clock = FakeClock(10.0)
    meter = PduMeter(url, {"node1": 0}, clock=clock)
    state.watts = {0: 80.0}
    meter.poll()
    clock.now = 11.0
    meter.poll()
    with pytest.raises(MeterUnavailable, match=r"pdu node node1 \(outlet 0\): samples start at"):
        meter.energy(9.0, 10.5)


def test_background_sampling_with_the_real_clock(pdu: tuple[str, PduState]) -> None:
    url, state = pdu
    state.watts = {0: 120.0, 5: 30.0}
    meter = PduMeter(url, {"a": 0, "b": 5}, interval_s=0.02)
    meter.start()
    begin = time.time()
    time.sleep(0.15)
    end = time.time()
    meter.stop()
    assert len(state.requests) >= 3
    assert meter.energy(begin, end).joules == pytest.approx(150.0 * (end - begin))


def test_server_down_is_unavailable_with_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    meter = PduMeter(f"http://127.0.0.1:{port}", {"node1": 0})
    availability = meter.availability()
    assert not availability.ok
    assert availability.reason == (
        f"connection refused by PDU at http://127.0.0.1:{port}/statusjsn.js?components=16384: "
        "check the address and that HTTP is on"
    )
    with pytest.raises(MeterUnavailable, match="connection refused"):
        meter.start()


def test_slow_pdu_times_out(pdu: tuple[str, PduState]) -> None:
    url, state = pdu
    state.mode = "slow"
    reason = PduMeter(url, {"node1": 0}, timeout_s=0.1).availability().reason
    assert reason == (
        f"no answer from PDU at {url}/statusjsn.js?components=16384 within 0.1 s (timed out)"
    )


def test_not_json_is_unavailable(pdu: tuple[str, PduState]) -> None:
    url, state = pdu
    state.mode = "html"
    reason = PduMeter(url, {"node1": 0}).availability().reason
    assert reason.startswith(f"PDU at {url}/statusjsn.js?components=16384 did not answer JSON")
    assert "b'<html>login</html>'" in reason


def test_unknown_outlet_is_unavailable(pdu: tuple[str, PduState]) -> None:
    url, _ = pdu
    reason = PduMeter(url, {"node1": 0, "node9": 12}).availability().reason
    assert "no active power for outlet 12 (node node9)" in reason
    assert "it reports 12 outlets" in reason


def test_invalid_settings_are_all_reported() -> None:
    with pytest.raises(ValueError) as info:
        PduMeter("pdu.local", {"a": -1, "b": True}, timeout_s=0)
    message = str(info.value)
    for part in ("url: expected http", "outlets.a:", "outlets.b:", "timeout_s: expected > 0"):
        assert part in message
    with pytest.raises(ValueError, match="at least one node"):
        PduMeter("http://pdu.local", {})


def test_describe_names_model_url_and_outlets(pdu: tuple[str, PduState]) -> None:
    url, _ = pdu
    line = PduMeter(url + "/", {"node1": 0, "node2": 3}).describe()
    assert line == (
        f"pdu: Lindy iPower Control 2x6 XM at {url}, node1=outlet 0, node2=outlet 3 "
        "(2 nodes), sampled every 1 s"
    )
