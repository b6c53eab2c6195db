"""Build the collaborators a run needs from a validated config: the energy source, the metrics
store and the backend. Used by the CLI (run, doctor); the tuner receives them ready-made.
"""

from __future__ import annotations

from typing import Any

from pipetune.config import TuningConfig
from pipetune.config_telemetry import PowerConfig, StoreConfig
from pipetune.store.base import NullStore, Store
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel

AUTO_ORDER = ("rapl", "nvml")  # meters `auto` tries, in order, before falling back


def build_meters(power: PowerConfig) -> list[Any]:
    """The configured meters (not yet checked for availability)."""
    from pipetune.telemetry.meter import create_meter

    if power.meter in ("estimate", "auto"):
        return []
    if power.meter == "pcm":
        options = dict(power.options)
        files = options.pop("files")
        return [create_meter("pcm", csv_path=path, **options) for path in files.values()]
    return [create_meter(power.meter, **power.options)]


def build_energy_source(power: PowerConfig) -> EnergySource:
    """A working energy source. `auto` picks the first available meter, else the estimate;
    an explicitly configured meter that cannot measure here is an error, not a silent estimate.
    """
    from pipetune.telemetry.meter import MeterUnavailable, create_meter

    model = CpuPowerModel(power.watts_per_core, power.idle_watts)
    if power.meter == "auto":
        reasons = []
        for name in AUTO_ORDER:
            meter = create_meter(name)
            availability = meter.availability()
            if availability.ok:
                return EnergySource(model, [meter])
            reasons.append(f"{name}: {availability.reason}")
        return EnergySource(model, [], unavailable=reasons)
    meters = build_meters(power)
    for meter in meters:
        availability = meter.availability()
        if not availability.ok:
            raise MeterUnavailable(
                f"powerMeter '{power.meter}' cannot measure: {availability.reason}"
            )
    return EnergySource(model, meters)


def build_store(store: StoreConfig) -> Store:
    if store.kind == "sqlite":
        from pipetune.store.sqlite import SqliteStore

        assert store.path is not None
        return SqliteStore(store.path)
    if store.kind == "influxdb":
        from pipetune.store.credentials import load_credentials
        from pipetune.store.influx import InfluxStore

        assert store.path is not None
        return InfluxStore(
            store.host,
            store.port,
            store.database,
            load_credentials(store.credentials_file),
            store.path,
            batch_size=store.batch_size,
        )
    return NullStore()


def build_backend(config: TuningConfig, energy: EnergySource) -> Any:
    from pipetune.backends.spark import SparkSubmitBackend
    from pipetune.placement import detect_placer, remove_stale_groups
    from pipetune.spark_env import discover
    from pipetune.telemetry.profiler import ProfilerSetup

    profiler = ProfilerSetup.detect()  # which perf events count here, found once per run
    placer, _ = detect_placer()  # how a running job is moved to other CPUs (cpuset or affinity)
    remove_stale_groups()  # empty cpusets a killed tuner left behind
    return SparkSubmitBackend(config.app, discover(), energy, config.base_dir, profiler, placer)
