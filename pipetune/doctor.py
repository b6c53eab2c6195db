"""`pipetune doctor`: what this machine can run and measure, what it cannot, and why."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pipetune.config import TuningConfig
from pipetune.config_telemetry import MeterKind
from pipetune.errors import PipeTuneError


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
    if config is not None:
        checks.append(_store(config))
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
