"""Build the collaborators a run needs from a validated config: the energy source, the metrics
store and the backend. Used by the CLI (run, doctor); the tuner receives them ready-made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipetune.config import TuningConfig
from pipetune.config_telemetry import PowerConfig, StoreConfig
from pipetune.store.base import NullStore, Store
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel

if TYPE_CHECKING:
    from pipetune.backends.base import Backend

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
                f"powerMeter {power.meter!r} cannot measure: {availability.reason}"
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


def build_backend(config: TuningConfig, energy: EnergySource) -> Backend[Any]:
    """The live backend, from the registry (backends/registry.py): spark-submit of the app,
    the only live engine so far."""
    from pipetune.backends import registry

    return registry.build("spark-submit", registry.BackendInputs(config=config, energy=energy))
