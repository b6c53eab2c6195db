"""Build the collaborators a run needs from a validated config: the energy source, the metrics
store and the backend. Used by the CLI (run, doctor); the tuner receives them ready-made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipetune.config import TuningConfig
from pipetune.config_telemetry import MeterKind, PowerConfig, StoreConfig, StoreKind
from pipetune.store.base import NullStore, Store
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel

if TYPE_CHECKING:
    from pipetune.backends.base import Backend

AUTO_ORDER = (MeterKind.RAPL, MeterKind.NVML)  # meters `auto` tries, in order, before falling back


def build_meters(power: PowerConfig) -> list[Any]:
    """The configured meters (not yet checked for availability)."""
    from pipetune.telemetry.meters import create_meter

    match power.meter:
        case MeterKind.ESTIMATE | MeterKind.AUTO:
            return []
        case MeterKind.PCM:  # one CSV file per node: one meter each, summed
            options = dict(power.options)
            files = options.pop("files")
            return [create_meter(power.meter, csv_path=path, **options) for path in files.values()]
        case _:
            return [create_meter(power.meter, **power.options)]


def build_energy_source(power: PowerConfig) -> EnergySource:
    """A working energy source. `auto` picks the first available meter, else the estimate;
    an explicitly configured meter that cannot measure here is an error, not a silent estimate.
    """
    from pipetune.telemetry.meter import MeterUnavailable
    from pipetune.telemetry.meters import create_meter

    model = CpuPowerModel(power.watts_per_core, power.idle_watts)
    if power.meter == MeterKind.AUTO:
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
    """The store `metrics.store` names (`STORES`), ready to write."""
    return STORES[StoreKind(store.kind)](store)


def _sqlite_store(store: StoreConfig) -> Store:
    from pipetune.store.sqlite import SqliteStore

    return SqliteStore(_store_path(store))


def _influx_store(store: StoreConfig) -> Store:
    from pipetune.store.credentials import load_credentials
    from pipetune.store.influx import InfluxStore

    return InfluxStore(
        store.host,
        store.port,
        store.database,
        load_credentials(store.credentials_file),
        _store_path(store),  # the spool
        batch_size=store.batch_size,
    )


def _null_store(store: StoreConfig) -> Store:
    return NullStore()


def _store_path(store: StoreConfig) -> Path:
    if store.path is None:  # parse_store always sets one for these kinds
        raise ValueError(f"a {store.kind} store needs a path")
    return store.path


# The stores by `metrics.store` name: the one place a new store is registered.
STORES: dict[StoreKind, Callable[[StoreConfig], Store]] = {
    StoreKind.SQLITE: _sqlite_store,
    StoreKind.INFLUXDB: _influx_store,
    StoreKind.NONE: _null_store,
}


def build_backend(config: TuningConfig, energy: EnergySource) -> Backend[Any]:
    """The live backend of the app config's engine, from the registry
    (backends/registry.py): spark-submit for BigDL, the torch backend for torch."""
    from pipetune.backends import registry

    inputs = registry.BackendInputs(config=config, energy=energy)
    return registry.build(config.app.settings.backend, inputs)
