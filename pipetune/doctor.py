"""`pipetune doctor`: what this machine can run and measure, what it cannot, and why."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pipetune.config import TuningConfig
from pipetune.config_telemetry import MeterKind, StoreConfig, StoreKind
from pipetune.errors import PipeTuneError

INFLUX_TIMEOUT_S = 3.0
DEFAULT_INFLUX = StoreConfig(kind=StoreKind.INFLUXDB)  # what a config's influxdb store defaults to


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    ok: bool
    detail: str
    required: bool = False  # a run cannot start without it

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "no  ")
        return f"[{mark}] {self.area:9} {self.name:22} {self.detail}"


def run_checks(config: TuningConfig | None) -> list[Check]:
    from pipetune.doctor_engines import engine_checks  # it imports Check from here

    checks = [_python()]
    checks += engine_checks(config)
    checks += _meters(config)
    checks += _counters()
    if config is None:
        checks.append(_influxdb(None, "the default address (no config)"))
    elif config.store.kind == StoreKind.INFLUXDB:
        checks.append(_influxdb(config.store, "the configured store"))
    else:
        checks.append(_store(config))
        used = f"the default address (this config's store is {config.store.kind})"
        checks.append(_influxdb(None, used))
    return checks


def _python() -> Check:
    ok = sys.version_info[:2] == (3, 11)
    return Check("runtime", "python", ok, sys.version.split()[0], required=True)


def _meters(config: TuningConfig | None) -> list[Check]:
    from pipetune.factory import AUTO_ORDER, build_meters
    from pipetune.telemetry.meters import create_meter

    meters = [create_meter(name) for name in AUTO_ORDER]  # always checked: what `auto` tries
    checked = {MeterKind.AUTO, MeterKind.ESTIMATE, *AUTO_ORDER}
    if config is not None and config.power.meter not in checked:
        try:
            meters += build_meters(config.power)
        except (PipeTuneError, ValueError, TypeError) as exc:
            return [Check("energy", config.power.meter, False, str(exc))]
    checks = []
    for meter in meters:
        availability = meter.availability()
        detail = meter.describe() if availability.ok else availability.reason
        checks.append(Check("energy", meter.source, availability.ok, detail))
    chosen = config.power.meter if config is not None else MeterKind.AUTO
    if chosen in (MeterKind.AUTO, MeterKind.ESTIMATE) and not any(c.ok for c in checks):
        checks.append(
            Check(
                "energy",
                "estimate (used)",
                True,
                "no meter here: energy is estimated from CPU time and labelled 'estimate'",
            )
        )
    return checks


def _counters() -> list[Check]:
    from pipetune.telemetry.perf_events import DEFAULT_EVENTS, detect_events

    support = detect_events(DEFAULT_EVENTS)
    if not support.perf_available:
        return [
            Check("counters", "perf", False, support.reason),
            Check(
                "counters", "/proc counters (used)", True, "CPU time, faults, context switches, I/O"
            ),
        ]
    software = {
        "task-clock",
        "cpu-clock",
        "context-switches",
        "cpu-migrations",
        "page-faults",
        "major-faults",
        "minor-faults",
    }
    hardware = [e for e in DEFAULT_EVENTS if e not in software]
    hw_ok = [e for e in hardware if e in support.supported]
    sw_ok = [e for e in support.supported if e in software]
    hw_detail = f"{len(hw_ok)}/{len(hardware)} supported"
    if not hw_ok:
        why = support.unsupported.get(hardware[0], "not supported")
        hw_detail += (
            f": {why} here (a VM without a PMU); "
            "profiles use software events + /proc counters instead"
        )
    checks = [
        Check("counters", "hardware events", bool(hw_ok), hw_detail),
        Check("counters", "software events", bool(sw_ok), ", ".join(sw_ok) or "none"),
        Check("counters", "/proc counters", True, "CPU time, faults, context switches, I/O"),
    ]
    return checks


def _store(config: TuningConfig) -> Check:
    from pipetune.factory import build_store

    try:
        store = build_store(config.store)
        status = store.status()
        store.close()
    except PipeTuneError as exc:
        return Check("store", config.store.kind, False, str(exc))
    detail = f"{status.location}" + (f" v{status.version}" if status.version else "")
    if status.spooled:
        detail += f", {status.spooled} point(s) spooled"
    if status.detail:
        detail += f" ({status.detail})"
    return Check("store", status.kind, status.reachable, detail)


def _influxdb(configured: StoreConfig | None, used: str) -> Check:
    """Whether an InfluxDB server answers at the configured address (else the default one), its
    version, and whether PipeTune's own client can write there: one point, measurement
    `doctor`, through the store the runs use (its database created if need be). `used` says
    which address it is."""
    store = configured or DEFAULT_INFLUX
    where = f"http://{store.host}:{store.port}"
    version, problem = _influx_version(store)
    if version is None:
        return Check("store", "influxdb", False, f"{where}: no server answers ({problem}); {used}")
    cannot_write = _influx_write_problem(store)
    if cannot_write:
        detail = f"{where} v{version} answers, but cannot write: {cannot_write}; {used}"
        return Check("store", "influxdb", False, detail)
    detail = f"{where}/{store.database} v{version} answers and took a write; {used}"
    return Check("store", "influxdb", True, detail)


def _influx_version(store: StoreConfig) -> tuple[str | None, str]:
    """The server's version from its /ping, or None and why not."""
    import requests
    from influxdb import InfluxDBClient

    client = InfluxDBClient(host=store.host, port=store.port, timeout=INFLUX_TIMEOUT_S, retries=1)
    try:
        return str(client.ping()), ""
    except requests.exceptions.ConnectionError as exc:
        refused = "refused" in str(exc).lower()
        return None, "connection refused" if refused else type(exc).__name__
    except (requests.exceptions.RequestException, KeyError, ValueError) as exc:
        return None, f"not an InfluxDB server? {type(exc).__name__}: {exc}"
    finally:
        client.close()


def _influx_write_problem(store: StoreConfig) -> str | None:
    """Why the run's InfluxDB store cannot write one point now, or None when it can."""
    import socket
    import tempfile
    import time
    from pathlib import Path

    from pipetune.store.base import Point
    from pipetune.store.credentials import load_credentials
    from pipetune.store.influx import InfluxStore

    point = Point("doctor", {"host": socket.gethostname()}, {"ok": 1}, time.time_ns())
    with tempfile.TemporaryDirectory(prefix="pipetune-doctor-") as spool_dir:
        try:
            credentials = load_credentials(store.credentials_file)
            client = InfluxStore(
                store.host,
                store.port,
                store.database,
                credentials,
                Path(spool_dir) / "spool.sqlite",
                timeout_s=INFLUX_TIMEOUT_S,
            )
            try:
                client.write([point])
                client.flush()
                status = client.status()
            finally:
                client.close()
        except PipeTuneError as exc:
            return " ".join(str(exc).split())
    if status.spooled or status.rejected:
        return status.detail or "the point was not acknowledged"
    return None
