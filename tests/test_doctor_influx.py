"""`pipetune doctor` and InfluxDB, configured or not: does a server answer, which version, and
can PipeTune's own client write there. Against a real influxd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipetune import doctor
from pipetune.cli import main
from pipetune.config_telemetry import StoreConfig, StoreKind
from tests.conftest import write_project
from tests.influxd import Influxd, free_port, require_influxd


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Influxd]:
    require_influxd()
    with Influxd(tmp_path / "influxd") as srv:
        yield srv


def influx_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " influxdb " in line]


def test_without_a_config_doctor_asks_the_default_address(
    server: Influxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = StoreConfig(kind=StoreKind.INFLUXDB, port=server.port)  # the server stands in
    monkeypatch.setattr(doctor, "DEFAULT_INFLUX", default)
    monkeypatch.chdir(tmp_path)  # no pipetune.conf here
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    (line,) = influx_lines(result.output)
    assert line.startswith("[ok  ] store")
    assert f"http://127.0.0.1:{server.port}/pipetune v1." in line
    assert "answers and took a write; the default address (no config)" in line
    # the write is real: the point is in the server
    assert "doctor" in server.influx_cli("pipetune", "SHOW MEASUREMENTS")


def test_the_configured_server_is_the_one_asked(server: Influxd, tmp_path: Path) -> None:
    conf = write_project(
        tmp_path,
        {"metrics": {"store": "influxdb", "port": server.port, "database": "checked"}},
    )
    result = CliRunner().invoke(main, ["doctor", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    (line,) = influx_lines(result.output)
    assert line.startswith("[ok  ]") and f":{server.port}/checked v1." in line
    assert "the configured store" in line
    assert not [line for line in result.output.splitlines() if " sqlite " in line]


def test_a_server_that_answers_but_refuses_writes(tmp_path: Path) -> None:
    require_influxd()
    with Influxd(tmp_path / "auth", auth_enabled=True) as srv:
        check = doctor._influxdb(StoreConfig(kind=StoreKind.INFLUXDB, port=srv.port), "here")
    assert not check.ok and " v1." in check.detail
    assert "answers, but cannot write:" in check.detail


def test_with_a_sqlite_config_the_default_address_is_still_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setattr(doctor, "DEFAULT_INFLUX", StoreConfig(kind=StoreKind.INFLUXDB, port=port))
    conf = write_project(tmp_path)
    result = CliRunner().invoke(main, ["doctor", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    (line,) = influx_lines(result.output)
    assert line.startswith("[no  ]") and f"127.0.0.1:{port}: no server answers" in line
    assert "this config's store is sqlite" in line
