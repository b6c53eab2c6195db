"""The power meters by name: the one place a new meter is registered.

The names are `powerMeter.type` values (`MeterKind`); `auto` and `estimate` name no meter
(factory.py handles them). A meter's `source` is its name, the `Energy.source` it reports.
"""

from __future__ import annotations

from typing import Any

from pipetune.config_telemetry import MeterKind
from pipetune.telemetry.meter import MeterUnavailable, PowerMeter
from pipetune.telemetry.nvml import NvmlMeter
from pipetune.telemetry.pcm import PcmMeter
from pipetune.telemetry.pdu import PduMeter
from pipetune.telemetry.rapl import RaplMeter

METERS: dict[MeterKind, type[PowerMeter]] = {
    MeterKind.RAPL: RaplMeter,
    MeterKind.PDU: PduMeter,
    MeterKind.PCM: PcmMeter,
    MeterKind.NVML: NvmlMeter,
}


def create_meter(name: str, **options: Any) -> PowerMeter:
    """Build the meter called `name` with its constructor options (from configuration).

    Raises:
        MeterUnavailable: no meter has that name.
    """
    try:
        cls = METERS[MeterKind(name)]
    except (ValueError, KeyError):  # no kind at all, or `auto`/`estimate`
        choices = ", ".join(sorted(METERS))
        raise MeterUnavailable(f"unknown meter {name!r}: choose one of {choices}") from None
    return cls(**options)
