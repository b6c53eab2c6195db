"""NVML meter: the real unavailable path here (no pynvml, no GPU), a fake NVML for the rest."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from pipetune.telemetry.integrate import CounterReset, counter_delta, counter_energy
from pipetune.telemetry.meter import MeterUnavailable
from pipetune.telemetry.nvml import NvmlMeter

NOT_INSTALLED = "nvidia-ml-py is not installed (`pip install nvidia-ml-py` provides `pynvml`)"


class NVMLError(Exception):
    pass


def fake_nvml(counters_mj: list[int], *, init_error: str = "", unsupported: bool = False) -> Any:
    """A stand-in for the pynvml module over `counters_mj` (one entry per GPU, mutable)."""

    def init() -> None:
        if init_error:
            raise NVMLError(init_error)

    def total_energy(handle: int) -> int:
        if unsupported:
            raise NVMLError("Not Supported")
        return counters_mj[handle]

    return SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=init,
        nvmlDeviceGetCount=lambda: len(counters_mj),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",  # bytes, as older pynvml returns
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
    )


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="pynvml is installed")
def test_without_nvidia_ml_py_it_is_unavailable_for_real() -> None:
    meter = NvmlMeter()
    assert meter.availability().ok is False
    assert meter.availability().reason == NOT_INSTALLED
    assert meter.describe() == f"nvml: unavailable ({NOT_INSTALLED})"
    with pytest.raises(MeterUnavailable, match="nvidia-ml-py is not installed"):
        meter.start()


def test_import_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert NvmlMeter().availability().reason == NOT_INSTALLED


def test_no_driver_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml([], init_error="NVML Shared Library Not Found")
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    reason = NvmlMeter().availability().reason
    assert reason == "no NVIDIA GPU found: NVML did not start (NVML Shared Library Not Found)"


def test_zero_devices_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    assert NvmlMeter().availability().reason == "no NVIDIA GPU found (NVML sees 0 devices)"


def test_gpu_without_the_energy_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([0], unsupported=True))
    reason = NvmlMeter().availability().reason
    assert reason.startswith("GPU 0 (NVIDIA H100 80GB HBM3) has no total-energy counter")
    assert "Volta or newer" in reason


def test_two_gpus_summed_from_millijoule_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    counters = [5_000_000, 9_000_000]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(counters))
    clock = FakeClock(100.0)
    meter = NvmlMeter(clock=clock)
    assert meter.availability().ok
    meter.poll()
    clock.now, counters[0], counters[1] = 102.0, 5_700_000, 9_300_000  # 350 W and 150 W
    meter.poll()
    energy = meter.energy(100.0, 102.0)
    assert (energy.source, energy.joules) == ("nvml", pytest.approx(1000.0))
    assert meter.energy(100.5, 101.0).joules == pytest.approx(250.0)
    assert meter.describe() == (
        "nvml: GPU 0 (NVIDIA H100 80GB HBM3), GPU 1 (NVIDIA H100 80GB HBM3) (2 GPUs) "
        "total-energy counters, sampled every 1 s"
    )


def test_driver_reload_refuses_windows_across_it(monkeypatch: pytest.MonkeyPatch) -> None:
    counters = [80_000_000]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(counters))
    clock = FakeClock(0.0)
    meter = NvmlMeter(devices=[0], clock=clock)
    for now, value in [(0.0, 80_000_000), (1.0, 80_200_000), (2.0, 1_000), (3.0, 301_000)]:
        clock.now, counters[0] = now, value
        meter.poll()
    assert meter.energy(0.0, 1.0).joules == pytest.approx(200.0)
    assert meter.energy(2.0, 3.0).joules == pytest.approx(300.0)
    with pytest.raises(MeterUnavailable, match="counter was reset"):
        meter.energy(0.5, 2.5)


def test_unknown_device_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([0, 0]))
    assert NvmlMeter(devices=[2]).availability().reason == "no GPU 2: NVML sees 2 (0..1)"


def test_millijoule_counter_arithmetic() -> None:
    # NVML's counter is 64-bit mJ: it never wraps, so no range; a decrease is a reset.
    assert counter_delta(123_456_789, 123_956_789, None) == 500_000
    with pytest.raises(CounterReset):
        counter_delta(123_956_789, 42, None)
    totals = [0.0, counter_delta(1_000, 401_000, None) * 1e-3]
    assert counter_energy([10.0, 12.0], totals, 10.5, 11.5) == pytest.approx(200.0)
