"""Wall power of whole nodes from a network PDU's HTTP JSON status page.

The PDU reports instantaneous active power per outlet; a background thread polls it and the
samples of each node are integrated over their real timestamps. Which outlet feeds which node
comes from configuration (`outlets`: node name → outlet index). The JSON layout is one small
function per PDU model (`PDU_MODELS`), so another unit is one entry more.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipetune.telemetry.meter import (
    Availability,
    MeterUnavailable,
    PowerTrace,
    SampledMeter,
)


def lindy_outlet_watts(status: Any, outlet: int) -> float:
    """Active power (W) of one outlet in a Lindy iPower Control 2x6 XM status document.

    The unit (Gude firmware) answers `GET /statusjsn.js?components=16384` (16384 selects the
    sensor values) with `sensor_values`: a list of sensor groups
    `{"type": T, "values": [[{"v": x}, ...], ...]}`, one inner list per sensor and one `{"v"}`
    per field. The outlet meters are the group of type 8, the second one (`sensor_values[1]`)
    after the line meter (type 1). Their fields are voltage (V), current (A), frequency (Hz),
    phase (°), active power (W, index 4), reactive power, apparent power, power factor, total
    and resettable energy (kWh; 1 Wh resolution, too coarse for epoch windows).

    Args:
        status: The parsed JSON document.
        outlet: 0-based position in the outlet meters' list (the unit's port 1 is 0).
    """
    groups = status["sensor_values"]
    typed = [g for g in groups if isinstance(g, dict) and g.get("type") == 8]
    group = typed[0] if typed else groups[1]
    return float(group["values"][outlet][4]["v"])


def lindy_outlet_count(status: Any) -> int:
    groups = status["sensor_values"]
    typed = [g for g in groups if isinstance(g, dict) and g.get("type") == 8]
    return len((typed[0] if typed else groups[1])["values"])


@dataclass(frozen=True)
class PduModel:
    """Where a PDU model publishes its status, and how to read an outlet's power from it."""

    name: str
    status_path: str
    outlet_watts: Callable[[Any, int], float]
    outlet_count: Callable[[Any], int]


PDU_MODELS: dict[str, PduModel] = {
    "lindy-ipower": PduModel(
        "Lindy iPower Control 2x6 XM",
        "/statusjsn.js?components=16384",
        lindy_outlet_watts,
        lindy_outlet_count,
    ),
}


class PduMeter(SampledMeter):
    """Energy of the nodes plugged into a metered PDU, summed over the configured outlets."""

    source = "pdu"

    def __init__(
        self,
        url: str,
        outlets: Mapping[str, int],
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        *,
        model: str = "lindy-ipower",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s, clock)
        problems = []
        if not url.startswith(("http://", "https://")):
            problems.append(f"url: expected http://host[:port], found {url!r}")
        if not outlets:
            problems.append("outlets: expected at least one node → outlet index, found none")
        for node, index in outlets.items():
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                problems.append(f"outlets.{node}: expected an outlet index >= 0, found {index!r}")
        if not timeout_s > 0:
            problems.append(f"timeout_s: expected > 0, found {timeout_s!r}")
        if model not in PDU_MODELS:
            problems.append(f"model: expected one of {', '.join(PDU_MODELS)}, found {model!r}")
        if problems:
            raise ValueError(
                "invalid PDU meter settings:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        self.url = url.rstrip("/")
        self.outlets = dict(outlets)
        self.timeout_s = timeout_s
        self.model = PDU_MODELS[model]
        self._traces = {
            node: PowerTrace(f"pdu node {node} (outlet {i})") for node, i in outlets.items()
        }

    @property
    def status_url(self) -> str:
        return self.url + self.model.status_path

    def availability(self) -> Availability:
        try:
            self._read_watts(self._fetch())
        except MeterUnavailable as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def describe(self) -> str:
        outlets = ", ".join(f"{node}=outlet {i}" for node, i in self.outlets.items())
        return (
            f"pdu: {self.model.name} at {self.url}, {outlets} ({len(self.outlets)} nodes), "
            f"sampled every {self.interval_s:g} s"
        )

    def _fetch(self) -> Any:
        url = self.status_url
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise MeterUnavailable(f"PDU at {url} answered HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise MeterUnavailable(self._network_reason(url, exc.reason)) from exc
        except OSError as exc:  # a timeout while reading the body
            raise MeterUnavailable(self._network_reason(url, exc)) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MeterUnavailable(
                f"PDU at {url} did not answer JSON ({exc}); it began {body[:60]!r}"
            ) from exc

    def _network_reason(self, url: str, reason: object) -> str:
        if isinstance(reason, TimeoutError):
            return f"no answer from PDU at {url} within {self.timeout_s:g} s (timed out)"
        if isinstance(reason, ConnectionRefusedError):
            return f"connection refused by PDU at {url}: check the address and that HTTP is on"
        return f"cannot reach PDU at {url}: {reason}"

    def _read_watts(self, status: Any) -> dict[str, float]:
        watts: dict[str, float] = {}
        for node, outlet in self.outlets.items():
            try:
                watts[node] = self.model.outlet_watts(status, outlet)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                try:
                    count = f"it reports {self.model.outlet_count(status)} outlets"
                except (KeyError, IndexError, TypeError):
                    count = "no outlet meters found in it"
                raise MeterUnavailable(
                    f"PDU at {self.status_url}: no active power for outlet {outlet} "
                    f"(node {node}) in the status JSON ({count}; {exc!r})"
                ) from exc
        return watts

    def _poll(self) -> None:
        before = self._clock()
        watts = self._read_watts(self._fetch())
        at = (before + self._clock()) / 2  # the reading was taken somewhere during the request
        for node, value in watts.items():
            self._traces[node].add(at, value)

    def _covers(self, end: float) -> bool:
        return all(trace.covers(end) for trace in self._traces.values())

    def _joules(self, start: float, end: float) -> float:
        return sum(trace.joules(start, end) for trace in self._traces.values())
