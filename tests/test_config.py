from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipetune.cli import main
from pipetune.config import check_mode, load_config, normalise_memory
from pipetune.config_probing import ProbeWindow, ProbingStrategy, RestartProbes, SwitchRule
from pipetune.config_search import Sampler
from pipetune.config_telemetry import MeterKind, StoreKind
from pipetune.engines.bigdl import executor_layout
from pipetune.errors import ConfigError
from tests.conftest import write_project


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_valid_config_resolves_defaults_and_paths(project: Path) -> None:
    cfg = load_config(project)
    assert [p.name for p in cfg.system_parameters] == ["cores", "memory"]
    assert cfg.system_parameters[0].default == "2"
    assert cfg.system_parameters[1].values == ("2g", "1g")
    assert cfg.app.script == (project.parent / "applications/lenet5/lenet5.py").resolve()
    assert cfg.search.epochs == 3 and cfg.search.sampler == "random"
    assert cfg.probing.objective.weights == {"duration": 1.0}
    # the remaining epochs run at the best probe unless the user opts into when-it-pays
    assert cfg.probing.switch == "always" and cfg.probing.continuation
    assert cfg.power.meter == "auto"
    assert cfg.runs_dir == project.parent / "runs"


def test_three_mistakes_are_all_reported_with_paths(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "systemParameters": {"cores": ["2", "two"], "memory": ["2g"]},
            "hyperParameters": {
                "batch_size": [],
                "learning_rate": [0.1],
                "learning_rate_decay": [0.0],
            },
            "search": {"trials": 2, "epochs": 3, "sampler": "bayes"},
        },
    )
    found = problems(path)
    assert len(found) == 3
    assert any(
        p.startswith("$.systemParameters.cores[1]: expected a whole number") and '"two"' in p
        for p in found
    )
    assert any(
        p.startswith("$.hyperParameters.batch_size: expected a non-empty list") for p in found
    )
    assert any(p.startswith("$.search.sampler: expected one of") and '"bayes"' in p for p in found)


def test_unknown_keys_and_types_are_named(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"serach": {}, "nodes": "node1", "powerMeter": "watts"})
    found = problems(path)
    assert any(p.startswith("$.serach: expected one of the known keys") for p in found)
    assert any(p.startswith("$.nodes: expected a non-empty list") for p in found)
    assert any(p.startswith("$.powerMeter.type: expected one of") for p in found)


def test_unknown_names_of_closed_vocabularies_name_the_path_and_the_choices(
    tmp_path: Path,
) -> None:
    path = write_project(
        tmp_path,
        {
            "search": {"trials": 2, "epochs": 3, "sampler": "bayes"},
            "probing": {
                "strategy": "random-walk",
                "switch": "sometimes",
                "restart_probes": 1,
                "window": "batch",
            },
            "powerMeter": {"type": "joulemeter"},
            "metrics": {"store": "mongodb"},
        },
    )
    assert sorted(problems(path)) == sorted(
        [
            "$.search.sampler: expected one of ['random', 'grid', 'tpe'], found \"bayes\"",
            "$.probing.strategy: expected one of ['one-at-a-time', 'grid'], found \"random-walk\"",
            "$.probing.switch: expected one of ['always', 'when-it-pays'], found \"sometimes\"",
            "$.probing.restart_probes: expected one of "
            "['when-they-can-pay', 'always', 'never'], found 1",
            "$.probing.window: expected one of ['iterations', 'epoch'], found \"batch\"",
            "$.powerMeter.type: expected one of "
            "['auto', 'estimate', 'rapl', 'pdu', 'pcm', 'nvml'], found \"joulemeter\"",
            "$.metrics.store: expected one of ['sqlite', 'influxdb', 'none'], found \"mongodb\"",
        ]
    )


def test_vocabulary_names_become_enum_members_with_the_same_values(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "probing": {"strategy": "grid", "switch": "when-it-pays", "window": "epoch"},
            "powerMeter": "estimate",
            "metrics": {"store": "none"},
        },
    )
    cfg = load_config(path)
    assert cfg.probing.strategy is ProbingStrategy.GRID
    assert cfg.probing.switch is SwitchRule.WHEN_IT_PAYS
    assert cfg.probing.restart_probes is RestartProbes.WHEN_THEY_CAN_PAY
    assert cfg.probing.window is ProbeWindow.EPOCH
    assert cfg.search.sampler is Sampler.RANDOM
    assert (cfg.power.meter, cfg.store.kind) == (MeterKind.ESTIMATE, StoreKind.NONE)
    # the names in records and journals stay the strings written in pipetune.conf
    assert json.dumps([cfg.probing.strategy, cfg.store.kind]) == '["grid", "none"]'
    assert f"{cfg.probing.switch}" == "when-it-pays"


def test_hyperparameter_without_app_flag_is_an_error(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"hyperParameters": {"batch_size": [32], "momentum": [0.9]}})
    found = problems(path)
    assert found == [
        "app.json: $.hyperParameterFlags: expected an app flag for hyperparameter "
        '"momentum", found no mapping (the app would never receive it)'
    ]


def test_ranges_are_validated(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "hyperParameters": {
                "batch_size": [32],
                "learning_rate": {"low": 0.1, "high": 0.01},
                "learning_rate_decay": {"low": 0, "high": 1, "log": True},
            }
        },
    )
    found = problems(path)
    assert "$.hyperParameters.learning_rate: expected low < high, found low=0.1, high=0.01" in found
    assert any(
        p.startswith("$.hyperParameters.learning_rate_decay.low: expected a positive")
        for p in found
    )


def test_probe_budget_must_leave_an_epoch(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"probing": {"budget": 3}})
    assert problems(path) == [
        "$.probing.budget: expected at most epochs − 1 = 2 probe epochs (one epoch must remain "
        "for the chosen setting), found 3"
    ]


def test_weighted_objective(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"probing": {"select_by": {"duration": 0.25, "energy": 0.75}}})
    assert load_config(path).probing.objective.weights == {"duration": 0.25, "energy": 0.75}
    bad = write_project(tmp_path, {"probing": {"select_by": {"duration": -1}}})
    assert problems(bad) == ["$.probing.select_by.duration: expected a weight ≥ 0, found -1"]


def test_standalone_cores_must_split_over_executors(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {"systemParameters": {"cores": ["4", "3"]}},
        {"master": "spark://127.0.0.1:7077", "num_executors": 2},
    )
    assert problems(path) == [
        "$.systemParameters.cores[1]: expected a core count divisible among 2 executors "
        '(num_executors), found "3"'
    ]
    assert executor_layout(4, 2) == (2, 2)
    assert executor_layout(1, 4) == (1, 1)


def test_grid_sampler_rejects_ranges(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "search": {"sampler": "grid"},
            "hyperParameters": {"batch_size": [32], "learning_rate": {"low": 0.01, "high": 0.1}},
        },
    )
    assert problems(path) == [
        "$.hyperParameters.learning_rate: expected a list of values (grid sampler), found a range"
    ]


def test_memory_normalisation() -> None:
    assert normalise_memory("2") == "2g"
    assert normalise_memory("512M") == "512m"
    with pytest.raises(ValueError):
        normalise_memory("lots")


def test_pipetune_mode_needs_two_epochs(tmp_path: Path) -> None:
    cfg = load_config(write_project(tmp_path, {"search": {"epochs": 1}}))
    check_mode(cfg, "v1")
    with pytest.raises(ConfigError, match=r"\$.search.epochs"):
        check_mode(cfg, "pipetune")


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text('{"bigdlConf": ')
    assert problems(bad)[0].startswith("$: expected valid JSON, found")
    assert "no such file" in problems(write_project(tmp_path, {"bigdlConf": "nope.json"}))[0]


def test_cli_reports_every_problem_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "systemParameters": {"cores": ["0"]},
            "hyperParameters": {"batch_size": [32, 32]},
            "search": {"epochs": "four"},
        },
    )
    result = CliRunner().invoke(main, ["--config", str(path)])
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    for where in ("$.systemParameters.cores[0]", "$.hyperParameters.batch_size", "$.search.epochs"):
        assert where in result.output
    assert not (tmp_path / "runs").exists()


def test_cli_dry_run_prints_plan(project: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(project), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (
        "probing (one-at-a-time, select by duration): cores=2,memory=2g, cores=1,memory=2g"
        in result.output
    )
    assert "not probed (budget 2 epoch(s)): cores=2,memory=1g" in result.output
    assert not (project.parent / "runs").exists()
    snapshot = json.loads(project.read_text())
    assert snapshot["search"]["epochs"] == 3


def test_pdu_meter_needs_an_outlet_for_every_node(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "nodes": ["n1", "n2"],
            "powerMeter": {
                "type": "pdu",
                "url": "http://127.0.0.1:9",
                "outlets": {"n1": 3, "n9": -1},
            },
        },
    )
    found = problems(path)
    assert "$.powerMeter.outlets.n9: expected an outlet number ≥ 0, found -1" in found
    assert any(
        p.startswith("$.powerMeter.outlets.n9: expected a node listed in $.nodes") for p in found
    )
    assert any(p.startswith('$.powerMeter.outlets: expected an entry for node "n2"') for p in found)


def test_pcm_meter_needs_files_and_a_real_time_zone(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        {
            "powerMeter": {
                "type": "pcm",
                "files": {"localhost": "pcm.csv"},
                "timezone": "Mars/Olympus",
            }
        },
    )
    assert [p for p in problems(path)] == [
        '$.powerMeter.timezone: expected the IANA time zone of the PCM host, e.g. "Europe/Zurich", '
        "found \"unknown zone 'Mars/Olympus'\""
    ]
    ok = write_project(
        tmp_path,
        {
            "powerMeter": {
                "type": "pcm",
                "files": {"localhost": "pcm.csv"},
                "timezone": "Europe/Zurich",
            }
        },
    )
    power = load_config(ok).power
    assert power.meter == "pcm" and power.options["files"] == {"localhost": tmp_path / "pcm.csv"}


def test_influx_store_config_refuses_a_password(tmp_path: Path) -> None:
    path = write_project(
        tmp_path, {"metrics": {"store": "influxdb", "port": 8087, "password": "x"}}
    )
    found = problems(path)
    assert any(
        p.startswith("$.metrics.password: expected no password in pipetune.conf") for p in found
    )
    ok = write_project(tmp_path, {"metrics": {"store": "influxdb", "port": 8087, "database": "db"}})
    store = load_config(ok).store
    assert (store.kind, store.port, store.database) == ("influxdb", 8087, "db")
    assert store.path == tmp_path / "runs/influx-spool.sqlite"
