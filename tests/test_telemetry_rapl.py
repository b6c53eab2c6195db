"""RAPL meter on a sysfs-like powercap tree built in tmp_path (this machine has no RAPL)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipetune.telemetry import rapl
from pipetune.telemetry.meter import MeterUnavailable, first_available
from pipetune.telemetry.meters import METERS, create_meter
from pipetune.telemetry.nvml import NvmlMeter
from pipetune.telemetry.rapl import RaplMeter

PKG_RANGE = 262_143_328_850  # max_energy_range_uj of a real Xeon package zone
DRAM_RANGE = 65_712_999_613


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def zone(path: Path, name: str, energy_uj: int, max_range: int) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    (path / "enabled").write_text("1\n")
    return path


def set_uj(root: Path, zone_name: str, value: int) -> None:
    (root / zone_name / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two packages, each with dram (and package-0 with core), plus psys and an MMIO alias."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type, not a zone
    zone(root / "intel-rapl:0", "package-0", 10_000_000, PKG_RANGE)
    zone(root / "intel-rapl:0" / "intel-rapl:0:0", "core", 5_000_000, PKG_RANGE)
    zone(root / "intel-rapl:0" / "intel-rapl:0:1", "dram", 1_000_000, DRAM_RANGE)
    zone(root / "intel-rapl:1", "package-1", PKG_RANGE - 20_000_000, PKG_RANGE)
    zone(root / "intel-rapl:1" / "intel-rapl:1:0", "dram", 3_000_000, DRAM_RANGE)
    zone(root / "intel-rapl:2", "psys", 900_000_000, PKG_RANGE)  # contains the packages
    zone(root / "intel-rapl-mmio:0", "package-0", 10_000_000, PKG_RANGE)  # same package again
    for sub in ("intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:1:0"):  # as on real sysfs
        (root / sub).symlink_to(root / sub.rsplit(":", 1)[0] / sub)
    return root


def test_counts_packages_and_dram_only(tree: Path) -> None:
    labels = [d.label for d in rapl.discover(tree)]
    assert labels == ["package-0", "package-0/dram", "package-1", "package-1/dram"]
    meter = RaplMeter(tree)
    assert meter.availability().ok
    assert meter.describe() == (
        f"rapl: package-0 + dram, package-1 + dram (4 domains) from {tree}, sampled every 1 s"
    )


def test_window_energy_is_exact_across_a_wrap(tree: Path) -> None:
    clock = FakeClock(100.0)
    meter = RaplMeter(tree, clock=clock)
    meter.poll()

    clock.now = 101.0
    set_uj(tree, "intel-rapl:0", 60_000_000)  # +50 J
    set_uj(tree, "intel-rapl:0:1", 6_000_000)  # +5 J
    set_uj(tree, "intel-rapl:1", 25_000_000)  # wrapped: 20 J to the top, then 25 J: +45 J
    set_uj(tree, "intel-rapl:1:0", 7_000_000)  # +4 J
    set_uj(tree, "intel-rapl:0:0", 999_000_000)  # core: inside package-0, never counted
    meter.poll()

    clock.now = 102.0
    set_uj(tree, "intel-rapl:0", 130_000_000)  # +70 J
    set_uj(tree, "intel-rapl:0:1", 11_000_000)  # +5 J
    set_uj(tree, "intel-rapl:1", 85_000_000)  # +60 J
    set_uj(tree, "intel-rapl:1:0", 11_000_000)  # +4 J
    meter.poll()

    energy = meter.energy(100.0, 101.0)
    assert (energy.source, energy.joules) == ("rapl", pytest.approx(104.0))
    energy = meter.energy(100.0, 102.0)
    assert (energy.source, energy.joules) == ("rapl", pytest.approx(243.0))
    # edges between readings: half of each second
    assert meter.energy(100.5, 101.5).joules == pytest.approx(104.0 / 2 + 139.0 / 2)


def test_window_longer_than_one_wrap_period_is_right(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    small = 100_000_000  # wraps every 2.5 s at 40 W
    zone(root / "intel-rapl:0", "package-0", 0, small)
    clock = FakeClock(0.0)
    meter = RaplMeter(root, interval_s=0.5, clock=clock)
    for step in range(21):  # 20 s at 40 W, read every second
        clock.now = float(step)
        set_uj(root, "intel-rapl:0", (step * 40_000_000) % (small + 1))
        meter.poll()
    # 7 wraps (at 100_000_001, 200_000_002, ... µJ), one µJ undercounted per wrap (counter_delta)
    assert meter.energy(0.0, 20.0).joules == pytest.approx(800.0 - 7e-6, abs=1e-9)
    assert meter.energy(3.25, 11.75).joules == pytest.approx(40.0 * 8.5, abs=1e-5)


def test_missing_tree_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    meter = RaplMeter(tmp_path / "nothing")
    availability = meter.availability()
    assert not availability.ok
    assert availability.reason == (
        f"no RAPL powercap tree at {tmp_path / 'nothing'}: this machine (or VM) does not "
        "expose RAPL"
    )
    with pytest.raises(MeterUnavailable, match="does not expose RAPL"):
        meter.start()
    assert "unavailable" in meter.describe()


def test_tree_without_packages_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "intel-rapl").mkdir()
    reason = RaplMeter(tmp_path).availability().reason
    assert reason == f"no RAPL package zone under {tmp_path} (found: intel-rapl)"


def test_root_only_counters_explain_the_fix(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    energy_file = tree / "intel-rapl:0" / "energy_uj"
    if os.geteuid() == 0:  # root reads through file modes: make the read fail as it would
        real = rapl._read_text

        def deny(path: Path) -> str:
            if path.name == "energy_uj":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(rapl, "_read_text", deny)
    else:
        energy_file.chmod(0)
    availability = RaplMeter(tree).availability()
    assert not availability.ok
    assert availability.reason.startswith(f"permission denied on {energy_file}: ")
    assert "readable by root only; run as root" in availability.reason
    assert f"`sudo chmod a+r {tree}/intel-rapl:*/energy_uj`" in availability.reason


def test_garbage_counter_is_unavailable(tree: Path) -> None:
    set_uj(tree, "intel-rapl:1", -1)
    (tree / "intel-rapl:1" / "energy_uj").write_text("n/a\n")
    reason = RaplMeter(tree).availability().reason
    assert reason == f"{tree / 'intel-rapl:1' / 'energy_uj'} holds 'n/a', not a counter value"


def test_window_before_the_first_reading_is_refused(tree: Path) -> None:
    clock = FakeClock(50.0)
    meter = RaplMeter(tree, clock=clock)
    meter.poll()
    with pytest.raises(MeterUnavailable, match=r"rapl package-0: samples start at .* 5\.000 s"):
        meter.energy(45.0, 50.0)


def wait_for_reading_after(meter: RaplMeter, at: float) -> None:
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if meter._tracks["package-0"].times[-1] > at:
            return
        time.sleep(0.01)
    raise AssertionError("the sampling thread took no reading")


def test_background_thread_samples_while_started(tree: Path) -> None:
    meter = RaplMeter(tree, interval_s=0.02)
    meter.start()
    meter.start()  # idempotent
    begin = time.time()
    wait_for_reading_after(meter, begin)  # the window's start lies between two idle readings
    write = time.time()
    set_uj(tree, "intel-rapl:0", 10_000_000 + 12_500_000)  # +12.5 J inside the window
    wait_for_reading_after(meter, write)
    end = time.time()
    wait_for_reading_after(meter, end)
    meter.stop()
    assert meter._thread is None
    assert meter.energy(begin, end).joules == pytest.approx(12.5)


def test_energy_reads_once_more_when_the_window_ends_after_the_last_reading(tree: Path) -> None:
    meter = RaplMeter(tree, interval_s=60.0)
    meter.start()  # one reading now, the next in a minute
    set_uj(tree, "intel-rapl:0", 10_000_000 + 3_000_000)
    times = meter._tracks["package-0"].times
    begin, end = times[0], time.time()
    joules = meter.energy(begin, end).joules  # reads at a time >= end, then interpolates
    assert len(times) == 2 and times[1] >= end
    assert joules == pytest.approx(3.0 * (end - begin) / (times[1] - begin))
    meter.stop()


def test_registry_builds_the_meter_by_name(tree: Path) -> None:
    assert METERS["rapl"] is RaplMeter
    meter = create_meter("rapl", root=tree, interval_s=2.0)
    assert isinstance(meter, RaplMeter) and meter.interval_s == 2.0
    with pytest.raises(MeterUnavailable, match="unknown meter 'joulemeter': choose one of nvml"):
        create_meter("joulemeter")


def test_first_available_picks_in_order_or_gives_every_reason(tree: Path, tmp_path: Path) -> None:
    missing, present = RaplMeter(tmp_path / "none"), RaplMeter(tree)
    assert first_available([missing, present]) is present
    with pytest.raises(MeterUnavailable) as info:
        first_available([missing, NvmlMeter(devices=[7])])
    lines = str(info.value).splitlines()
    assert lines[0] == "no power meter is available:"
    assert lines[1].startswith("  - rapl: no RAPL powercap tree at")
    assert lines[2].startswith("  - nvml: ")
