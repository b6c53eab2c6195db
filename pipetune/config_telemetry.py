"""The `powerMeter` and `metrics` sections of pipetune.conf. Credentials never live here: the
InfluxDB user and password come from the environment or a credentials file (see README).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, is_number, show


class MeterKind(enum.StrEnum):
    """`powerMeter.type`: a meter of telemetry/meters.py, or one of the two ways to do without."""

    AUTO = "auto"  # the first available of rapl, nvml (factory.AUTO_ORDER), else the estimate
    ESTIMATE = "estimate"  # CPU time × watts per core, never a meter
    RAPL = "rapl"
    PDU = "pdu"
    PCM = "pcm"
    NVML = "nvml"


class StoreKind(enum.StrEnum):
    """`metrics.store`: where the run's points go (factory.STORES builds each)."""

    SQLITE = "sqlite"
    INFLUXDB = "influxdb"
    NONE = "none"


# Options each meter type accepts (JSON key → constructor keyword).
_METER_OPTIONS: dict[MeterKind, dict[str, str]] = {
    MeterKind.AUTO: {},
    MeterKind.ESTIMATE: {},
    MeterKind.RAPL: {"root": "root", "intervalS": "interval_s"},
    MeterKind.PDU: {
        "url": "url",
        "outlets": "outlets",
        "model": "model",
        "intervalS": "interval_s",
        "timeoutS": "timeout_s",
    },
    MeterKind.PCM: {
        "files": "files",
        "timezone": "timezone",
        "intervalS": "interval_s",
        "includeDram": "include_dram",
    },
    MeterKind.NVML: {"devices": "devices", "intervalS": "interval_s"},
}
_ESTIMATE_KEYS = {"type", "wattsPerCore", "idleWatts"}


@dataclass(frozen=True)
class PowerConfig:
    """Which meter measures energy; `auto` tries RAPL, then NVML, else the estimate."""

    meter: MeterKind = MeterKind.AUTO
    options: dict[str, Any] = field(default_factory=dict)
    watts_per_core: float = 10.0
    idle_watts: float = 5.0


@dataclass(frozen=True)
class StoreConfig:
    kind: StoreKind = StoreKind.SQLITE
    path: Path | None = None  # sqlite file, or the InfluxDB spool
    host: str = "127.0.0.1"
    port: int = 8086
    database: str = "pipetune"
    credentials_file: Path | None = None
    batch_size: int = 500


def parse_power(c: Checker, raw: Any, nodes: tuple[str, ...], base_dir: Path) -> PowerConfig:
    p = "$.powerMeter"
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        names = [kind.value for kind in MeterKind]
        c.problem(p, f'one of {names} or an object with a "type"', show(raw))
        return PowerConfig()
    meter = c.choice(f"{p}.type", raw.get("type", MeterKind.AUTO), MeterKind)
    c.unknown_keys(p, raw, _ESTIMATE_KEYS | set(_METER_OPTIONS[meter]))
    d = PowerConfig()
    watts = raw.get("wattsPerCore", d.watts_per_core)
    idle = raw.get("idleWatts", d.idle_watts)
    for key, value in (("wattsPerCore", watts), ("idleWatts", idle)):
        if not is_number(value) or value < 0:
            c.problem(f"{p}.{key}", "a number of watts ≥ 0", show(value))
    options = {_METER_OPTIONS[meter][k]: v for k, v in raw.items() if k in _METER_OPTIONS[meter]}
    _check_meter_options(c, p, meter, options, nodes, base_dir)
    if not (is_number(watts) and is_number(idle)):
        return d
    return PowerConfig(meter, options, float(watts), float(idle))


def _check_meter_options(
    c: Checker,
    p: str,
    meter: MeterKind,
    options: dict[str, Any],
    nodes: tuple[str, ...],
    base_dir: Path,
) -> None:
    if "interval_s" in options and not (
        is_number(options["interval_s"]) and options["interval_s"] > 0
    ):
        c.problem(f"{p}.intervalS", "a number of seconds > 0", show(options["interval_s"]))
    if meter is MeterKind.RAPL and "root" in options:
        options["root"] = Path(c.string(f"{p}.root", options["root"]) or "/sys/class/powercap")
    if meter is MeterKind.PDU:
        c.string(f"{p}.url", options.get("url"))
        _node_map(
            c,
            f"{p}.outlets",
            options.get("outlets"),
            nodes,
            "an outlet number ≥ 0",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        )
    if meter is MeterKind.PCM:
        _node_map(
            c,
            f"{p}.files",
            options.get("files"),
            nodes,
            "the path of pcm.x /csv output",
            lambda v: isinstance(v, str) and bool(v),
        )
        if isinstance(options.get("files"), dict):
            options["files"] = {k: base_dir / v for k, v in options["files"].items()}
        _timezone(c, f"{p}.timezone", options.get("timezone"))


def _node_map(c: Checker, p: str, raw: Any, nodes: tuple[str, ...], what: str, ok: Any) -> None:
    """Per-node settings: every node of `nodes` needs one (energy is summed over nodes)."""
    if not isinstance(raw, dict) or not raw:
        c.problem(p, f"an object mapping each node in $.nodes to {what}", show(raw))
        return
    for node, value in raw.items():
        if not ok(value):
            c.problem(f"{p}.{node}", what, show(value))
        if node not in nodes:
            c.problem(f"{p}.{node}", f"a node listed in $.nodes {list(nodes)}", f'"{node}"')
    for node in nodes:
        if node not in raw:
            c.problem(p, f'an entry for node "{node}" (energy is summed over every node)', "none")


def _timezone(c: Checker, p: str, raw: Any) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw) if isinstance(raw, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        raw = f"unknown zone {raw!r}"
    if not isinstance(raw, str) or raw.startswith("unknown zone"):
        c.problem(p, 'the IANA time zone of the PCM host, e.g. "Europe/Zurich"', show(raw))


def parse_store(c: Checker, raw: Any, base_dir: Path) -> StoreConfig:
    p = "$.metrics"
    if not isinstance(raw, dict):
        c.problem(p, "an object", show(raw))
        return StoreConfig()
    kind = c.choice(f"{p}.store", raw.get("store", StoreKind.SQLITE), StoreKind)
    if kind is StoreKind.SQLITE:
        c.unknown_keys(p, raw, {"store", "path"})
        path = c.string(f"{p}.path", raw.get("path", "runs/metrics.sqlite"))
        return StoreConfig(kind, base_dir / path)
    if kind is StoreKind.NONE:
        c.unknown_keys(p, raw, {"store"})
        return StoreConfig(kind)
    c.unknown_keys(
        p, raw, {"store", "host", "port", "database", "credentialsFile", "spool", "batchSize"}
    )
    if "password" in {k.lower() for k in raw}:
        c.problem(
            f"{p}.password",
            "no password in pipetune.conf (use PIPETUNE_INFLUX_PASSWORD or a credentials file)",
            "a password",
        )
    creds = raw.get("credentialsFile")
    return StoreConfig(
        kind,
        path=base_dir / c.string(f"{p}.spool", raw.get("spool", "runs/influx-spool.sqlite")),
        host=c.string(f"{p}.host", raw.get("host", "127.0.0.1")),
        port=c.positive_int(f"{p}.port", raw.get("port", 8086)),
        database=c.string(f"{p}.database", raw.get("database", "pipetune")),
        credentials_file=base_dir / c.string(f"{p}.credentialsFile", creds)
        if creds is not None
        else None,
        batch_size=c.positive_int(f"{p}.batchSize", raw.get("batchSize", 500)),
    )
