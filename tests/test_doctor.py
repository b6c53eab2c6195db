from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from pipetune.cli import main
from pipetune.telemetry.perf_events import HARDWARE_EVENTS, detect_events
from tests.conftest import write_project
from tests.influxd import free_port


def test_doctor_tells_the_truth_about_this_machine(tmp_path: Path) -> None:
    conf = write_project(tmp_path)
    result = CliRunner().invoke(main, ["doctor", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    lines = {
        line[7:].split()[0] + " " + line[7:].split()[1]: line for line in result.output.splitlines()
    }
    assert lines["runtime java"].startswith("[ok  ]")
    assert lines["runtime spark"].startswith("[ok  ]") and "pyspark 3.5.9" in lines["runtime spark"]
    pinning = "[ok  ]" if shutil.which("taskset") else "[no  ]"
    assert lines["runtime core"].startswith(pinning)  # "core pinning"
    if not Path("/sys/class/powercap").exists():
        assert lines["energy rapl"].startswith("[no  ]")
        assert "does not expose RAPL" in lines["energy rapl"]
        assert "estimated from CPU time" in result.output
    hardware_ok = any(e in detect_events(HARDWARE_EVENTS).supported for e in HARDWARE_EVENTS)
    assert lines["counters hardware"].startswith("[ok  ]" if hardware_ok else "[no  ]")
    if not hardware_ok:
        assert "software events + /proc counters instead" in lines["counters hardware"]
    assert lines["store sqlite"].startswith("[ok  ]")


def test_doctor_reports_an_unreachable_influxdb(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    conf = write_project(tmp_path, {"metrics": {"store": "influxdb", "port": port}})
    result = CliRunner().invoke(main, ["doctor", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    store = [line for line in result.output.splitlines() if " store " in line]
    assert len(store) == 1 and store[0].startswith("[no  ]") and str(port) in store[0]


def test_doctor_flags_a_configured_meter_that_cannot_measure(tmp_path: Path) -> None:
    conf = write_project(
        tmp_path,
        {
            "powerMeter": {
                "type": "pdu",
                "url": f"http://127.0.0.1:{free_port()}",
                "outlets": {"localhost": 1},
            }
        },
    )
    result = CliRunner().invoke(main, ["doctor", "--config", str(conf)])
    pdu = [line for line in result.output.splitlines() if " pdu " in line]
    assert len(pdu) == 1 and pdu[0].startswith("[no  ]")


def test_a_run_with_a_meter_that_cannot_measure_stops_before_anything_runs(tmp_path: Path) -> None:
    conf = write_project(tmp_path, {"powerMeter": {"type": "rapl", "root": str(tmp_path / "none")}})
    result = CliRunner().invoke(main, ["--config", str(conf)])
    assert result.exit_code == 1
    assert "powerMeter 'rapl' cannot measure" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_energy_description_says_why_it_is_an_estimate() -> None:
    from pipetune.config_telemetry import PowerConfig
    from pipetune.factory import build_energy_source

    chosen = build_energy_source(PowerConfig(meter="estimate")).describe()
    assert chosen.startswith("estimate: CPU seconds") and "(powerMeter is 'estimate')" in chosen
    auto = build_energy_source(PowerConfig(meter="auto"))
    if not auto.meters:  # this VM: no RAPL, no NVML; every reason is named
        assert "no energy meter: rapl: " in auto.describe() and "nvml: " in auto.describe()
