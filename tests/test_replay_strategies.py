"""Replays through the live tuner: offline strategies, the oracle, online queueing with
recognition, and the CLI commands, on synthetic traces (no Spark)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipetune.cli import main
from pipetune.config import load_config
from pipetune.probing.candidates import default_setting, probe_candidates
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import SystemSetting
from pipetune.replay import Trace, synthetic_trace
from pipetune.replay.offline import oracle_violations, run_offline, summarise, table
from pipetune.replay.online import Job, Overload, Services, check_load, poisson_jobs, simulate
from pipetune.replay.oracle import best_setting, trial_cost
from pipetune.replay.runner import replay_job
from pipetune.search import HyperparameterSearch
from tests.conftest import write_project

CONF = {"search": {"trials": 3, "epochs": 4, "seed": 0}}


def every_trial(summary: dict) -> list[dict]:
    """A replayed job's trials, all of them: a check that loops over them cannot pass on none."""
    assert len(summary["trials"]) == CONF["search"]["trials"]
    return summary["trials"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trace, object, Path]:
    root = tmp_path_factory.mktemp("replay")
    config = load_config(write_project(root, CONF))
    settings = probe_candidates(config.system_parameters, "grid")
    return synthetic_trace(3, 5, settings, 4, seed=11), config, root


def test_the_search_draws_only_recorded_configurations():
    configs = [{"batch_size": 32, "lr": 0.1}, {"batch_size": 64, "lr": 0.01}]
    search = HyperparameterSearch((), "random", 3, configs=configs)
    drawn = [search.ask().hyperparameters for _ in range(8)]
    assert all(d in configs for d in drawn) and len({json.dumps(d) for d in drawn}) == 2
    grid = HyperparameterSearch((), "grid", 3, configs=configs)
    assert grid.planned_trials(10) == 2


def test_offline_runs_every_strategy_with_the_same_seeds(setup):
    trace, config, _ = setup
    outcomes = run_offline(trace, config, range(3))
    assert len(outcomes) == 3 * 3 * 4  # workloads × seeds × strategies
    by = {(o.workload, o.seed, o.strategy): o for o in outcomes}
    for (workload, seed, strategy), o in by.items():
        configs = [t["hyperparameters"] for t in o.summary["trials"]]
        if strategy != "v2":  # v2's extra search dimensions change its draws
            v1 = [t["hyperparameters"] for t in by[(workload, seed, "v1")].summary["trials"]]
            assert configs == v1
        sources = {t["system"]["source"] for t in o.summary["trials"]}
        expected = {"v1": "default", "v2": "searched", "pipetune": "probed", "oracle": "oracle"}
        assert sources == {expected[strategy]}
        assert (o.probe_epochs + o.probe_windows > 0) == (strategy == "pipetune")
    assert oracle_violations(trace, config, outcomes) == []
    rows = summarise(outcomes)
    v1_rows = [r for r in rows if r["strategy"] == "v1"]
    assert all(r["tuning_s_vs_v1"] == 1.0 for r in v1_rows)
    oracle_rows = [r for r in rows if r["strategy"] == "oracle"]
    assert all(r["tuning_s_vs_v1"] <= 1.0 for r in oracle_rows)
    assert "| oracle |" in table(rows)


def test_the_oracle_runs_each_trial_at_its_cheapest_setting(setup):
    trace, config, _ = setup
    workload = trace.workloads()[1]
    default = SystemSetting.of({"cores": "2", "memory": "2g"})
    o = replay_job(trace, workload, config, "oracle", 4)
    for trial in every_trial(o.summary):
        key = json.dumps(trial["hyperparameters"], sort_keys=True, separators=(",", ":"))
        costs = {
            s: trial_cost(trace, workload, key, s, 4).epoch_s for s in trace.settings(workload, key)
        }
        best = best_setting(trace, workload, key, 4, config.probing.objective, default)
        assert costs[best.label()] == min(costs.values())
        assert SystemSetting.of(trial["system"]["chosen"]) == best
        assert trial["time"]["total_s"] == pytest.approx(costs[best.label()], abs=1e-3)


def test_a_beaten_oracle_is_reported(setup):
    trace, config, _ = setup
    o = replay_job(trace, trace.workloads()[0], config, "v1", 0)
    trial = o.summary["trials"][0]
    trial["time"]["total_s"] *= 0.5  # as if the run had been twice as fast as possible
    found = oracle_violations(trace, config, [o])
    assert [(v.trial, round(v.ratio, 2) < 1) for v in found][:1] == [(trial["id"], True)]


def test_the_oracle_check_credits_the_summaries_rounding_and_nothing_more(setup):
    # The summaries round to 3 decimals: an oracle trial can read 0.0005 under its own bound
    # (CI once failed a 3 s torch trial on 1.7e-4 of relative rounding). A hundredth of a
    # second under the bound is not rounding, however long the trial.
    trace, config, _ = setup
    o = replay_job(trace, trace.workloads()[0], config, "oracle", 0)
    trial = o.summary["trials"][0]
    trial["time"]["total_s"] -= 0.0004
    trial["energy"]["joules"] -= 0.0004
    assert oracle_violations(trace, config, [o]) == []
    trial["time"]["total_s"] -= 0.01
    assert [v.trial for v in oracle_violations(trace, config, [o])] == [trial["id"]]


def as_v2(trace: Trace) -> Trace:
    """The trace as a v2 one reads: nothing live (every change a restart), no steady times."""
    return Trace(trace.frame.assign(live="", switch_s=0.0, steady_s=np.nan))


def test_replay_chooses_what_probing_would_choose_on_the_traces_numbers(setup):
    # The policy is the live one. With nothing live (a v2 trace) the probes are epochs 1, 2, 3
    # at the candidates in order, each in a new process, and the chosen setting is select_best
    # over those recorded epochs.
    trace, config, _ = setup
    trace = as_v2(trace)
    # switch "always": train at the argmin (when-it-pays may keep the last probe instead)
    probing = dataclasses.replace(config.probing, switch="always")
    config = dataclasses.replace(config, probing=probing)
    candidates = probe_candidates(config.system_parameters, config.probing.strategy)
    for workload in trace.workloads():
        o = replay_job(trace, workload, config, "pipetune", 2)
        for trial in every_trial(o.summary):
            key = json.dumps(trial["hyperparameters"], sort_keys=True, separators=(",", ":"))
            probes = []
            for setting in candidates[:3]:
                # each probe is a new process: its epoch costs what the group's epoch 1 did
                row = trace.epochs(workload, key, setting)[0]
                probes.append(ProbeResult(setting, row.duration_s, row.energy_j, "synthetic"))
            expected = select_best(probes, config.probing.objective).setting
            assert SystemSetting.of(trial["system"]["chosen"]) == expected
            assert trial["processes"] >= 3
            assert {p["how"] for p in trial["system"]["probes"]} == {"new process"}


def test_live_replay_chooses_on_the_warm_numbers_it_probed(setup):
    # The synthetic trace switches cores live: one process per trial probes the default
    # (epoch 1, cold: its steady pace), then cores=1 live at epoch 2 (warm: the recorded epoch
    # 2 at cores=1), maybe the default again, warm; memory needs a restart and is not worth
    # one here. The choice is select_best over each setting's latest measurement.
    trace, config, _ = setup
    assert trace.live(trace.workloads()[0]) == frozenset({"cores"})
    probing = dataclasses.replace(config.probing, switch="always", window="epoch")
    config = dataclasses.replace(config, probing=probing)
    for workload in trace.workloads():
        o = replay_job(trace, workload, config, "pipetune", 2)
        for trial in every_trial(o.summary):
            key = json.dumps(trial["hyperparameters"], sort_keys=True, separators=(",", ":"))
            assert trial["processes"] == 1
            probes = trial["system"]["probes"]
            assert [p["how"] for p in probes][:2] == ["new process", "live"]
            assert [p["setting"]["cores"] for p in probes][:2] == ["2", "1"]
            latest: dict[SystemSetting, ProbeResult] = {}
            for p in probes:
                setting = SystemSetting.of(p["setting"])
                row = trace.epochs(workload, key, setting)[p["epoch"] - 1]
                assert p["epoch_s"] == pytest.approx(row.duration_s, abs=1e-3)
                assert p["steady_s"] == pytest.approx(row.steady_s, abs=1e-3)
                latest[setting] = ProbeResult(setting, row.steady_s, None, "synthetic")
            expected = select_best(list(latest.values()), config.probing.objective).setting
            assert SystemSetting.of(trial["system"]["chosen"]) == expected
            assert {s["how"] for s in trial["system"]["switches"]} == {"live"}


def test_window_replay_probes_inside_epoch_2_at_the_recorded_pace(setup):
    # Window probes: epoch 1 warms up at the launch setting (cores=2, the widest), then the
    # default and cores=1 run windows inside epoch 2 at the pace the trace recorded for epoch 2
    # under each; without noise every window is as long as its minimum and the choice is the
    # faster pace. The windows' time is inside epoch 2, which ends at the chosen setting.
    trace, config, _ = setup
    config = dataclasses.replace(config, probing=dataclasses.replace(config.probing))
    assert config.probing.window == "iterations"
    workload = trace.workloads()[0]
    o = replay_job(trace, workload, config, "pipetune", 2)
    for trial in every_trial(o.summary):
        key = json.dumps(trial["hyperparameters"], sort_keys=True, separators=(",", ":"))
        assert trial["processes"] == 1 and trial["probe_epochs"] == 0
        probes = trial["system"]["probes"]
        assert probes and {p["how"] for p in probes} == {"window"}
        assert {p["epoch"] for p in probes} == {2}
        paces = {}
        for p in probes:
            setting = SystemSetting.of(p["setting"])
            row = trace.epochs(workload, key, setting)[1]
            per_epoch = -(-row.samples // trial["hyperparameters"]["batch_size"])
            w = p["window"]
            assert w["s_per_iteration"] == pytest.approx(
                row.steady_s / per_epoch, rel=1e-3, abs=1e-5
            )
            assert w["iterations"] == config.probing.window_min
            assert w["warmup_iterations"] == config.probing.window_warmup
            assert w["rel_error"] == 0.0  # no noise, no spread
            paces[setting] = w["s_per_iteration"]
        assert SystemSetting.of(trial["system"]["chosen"]) == min(paces, key=paces.__getitem__)
        assert trial["time"]["probe_s"] > 0


def test_online_recognition_learns_then_hits_and_counts_false_hits(setup):
    trace, config, _ = setup
    services = Services(trace, config)
    jobs = poisson_jobs(300, 1 / 600, trace.workloads(), 4, np.random.default_rng(1))
    result = simulate("pipetune", jobs, services, 4, 0.5, profile_noise=0.1)
    assert result.trials == 300 * 3
    assert result.recognised > 0.8 * result.trials  # after the first jobs of each workload
    assert result.probed >= 3  # each workload probed before it is known
    assert result.false_hits <= 0.01 * result.recognised
    # Noise as large as the workloads' differences (1 log unit per counter) blurs them: the
    # model learns that noise, some look-ups land on another workload's entry, and they are
    # counted as such.
    blurred = simulate("pipetune", jobs, services, 4, 0.5, profile_noise=1.0)
    assert blurred.false_hits > result.false_hits
    v1 = simulate("v1", jobs, services, 4, 0.5)
    assert v1.recognised == 0 and v1.mean_response_s >= v1.mean_service_s
    assert v1.p95_response_s >= v1.mean_service_s
    # pipetune without its model's hits costs what probing costs
    probing = Services(trace, config).fixed("pipetune", jobs[0].workload, jobs[0].seed)
    assert probing.probe_epochs + probing.probe_windows > 0


def test_one_slot_serves_first_come_first_served(setup):
    trace, config, _ = setup
    services = Services(trace, config)
    workload = trace.workloads()[0]
    service = services.fixed("v1", workload, 0).tuning_s
    jobs = [Job(i, 0.1 * i, workload, 0) for i in range(3)]  # all arrive at once
    result = simulate("v1", jobs, services, 1, 3.0)
    waits = [0.0, service - 0.1, 2 * service - 0.2]
    assert result.mean_wait_s == pytest.approx(sum(waits) / 3)
    assert result.mean_response_s == pytest.approx(service + sum(waits) / 3)
    two = simulate("v1", jobs, services, 2, 1.5)
    assert two.mean_wait_s == pytest.approx((service - 0.2) / 3)


def test_a_load_of_one_or_more_is_refused_or_warned():
    check_load({"v1": 0.7, "pipetune": 0.95}, False, print)
    with pytest.raises(Overload, match=r"v2 1\.10"):
        check_load({"v1": 0.7, "v2": 1.1}, False, print)
    warnings: list[str] = []
    check_load({"v1": 1.0}, True, warnings.append)
    assert warnings and "grow without bound" in warnings[0]


def test_cli_trace_and_replay_commands(setup, tmp_path: Path):
    _, _, root = setup
    runner = CliRunner()
    conf = str(root / "pipetune.conf")
    out = tmp_path / "syn.csv.gz"
    r = runner.invoke(
        main,
        [
            "trace",
            "synthetic",
            "--config",
            conf,
            "--out",
            str(out),
            "--workloads",
            "2",
            "--configs",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["trace", "show", str(out)])
    assert r.exit_code == 0 and "(synthetic)" in r.output and "3 configuration(s)" in r.output
    r = runner.invoke(
        main,
        [
            "replay",
            "offline",
            str(out),
            "--config",
            conf,
            "--seeds",
            "2",
            "--out",
            str(tmp_path / "off"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC trace" in r.output and "oracle check: no trial" in r.output
    summary = pd.read_csv(tmp_path / "off" / "offline.csv")
    assert set(summary["strategy"]) == {"v1", "v2", "pipetune", "oracle"}
    assert len(pd.read_csv(tmp_path / "off" / "offline-runs.csv")) == 2 * 2 * 4
    r = runner.invoke(
        main,
        [
            "replay",
            "online",
            str(out),
            "--config",
            conf,
            "--jobs",
            "200",
            "--out",
            str(tmp_path / "on"),
        ],
    )
    assert r.exit_code == 0, r.output
    online = pd.read_csv(tmp_path / "on" / "online.csv")
    assert list(online["jobs"]) == [200] * 4
    r = runner.invoke(main, ["replay", "online", str(out), "--config", conf, "--load", "1.2"])
    assert r.exit_code == 2 and "offered load >= 1" in r.output
    bad = tmp_path / "bad.csv.gz"
    frame = Trace.load(out).frame
    frame.loc[3, "accuracy"] = 7.0
    frame.to_csv(bad, index=False)  # no version line either
    r = runner.invoke(main, ["replay", "offline", str(bad), "--config", conf])
    assert r.exit_code == 2 and "pipetune-trace v2" in r.output
    other = tmp_path / "other.csv.gz"
    default = default_setting(load_config(conf).system_parameters).label()
    frame = Trace.load(out).frame
    Trace(frame[frame["setting"] != default]).save(other)
    for command in ("offline", "online"):
        r = runner.invoke(main, ["replay", command, str(other), "--config", conf])
        assert r.exit_code == 2 and f"no rows at the config's default setting {default}" in r.output


def test_record_trace_writes_what_the_backend_ran_and_continues_a_partial_file(setup, tmp_path):
    # The recorder drives any backend; over a ReplayBackend it must reproduce its source.
    from pipetune.replay.backend import ReplayBackend
    from pipetune.replay.record import grid_plan, record_trace

    source, config, _ = setup
    workload = source.workloads()[0]
    plan = grid_plan(config, 2)
    # the source knows its own configurations: record those, not the config's draws
    configs = [json.loads(c) for c in source.configs(workload)[:2]]
    plan = type(plan)(configs, plan.settings, plan.epochs)
    out = tmp_path / "rec.csv.gz"
    said: list[str] = []

    def record(backend, plan_=plan):
        return record_trace(
            config, backend, out, tmp_path / "work", workload=workload, plan=plan_, say=said.append
        )

    first = record(ReplayBackend(source, workload))
    assert first is not None and len(first) == 2 * 4 * config.search.epochs
    for c in first.configs(workload):
        for s in first.settings(workload, c):
            got, want = first.epochs(workload, c, s), source.epochs(workload, c, s)
            assert [r.duration_s for r in got] == pytest.approx([r.duration_s for r in want])
            assert [r.accuracy for r in got] == [r.accuracy for r in want]
            assert got[0].startup_s == pytest.approx(want[0].startup_s)
            assert got[0].samples == want[0].samples
    assert first.profile(workload) == source.profile(workload)
    said.clear()
    again = record(ReplayBackend(source, workload))
    assert said == [f"continuing {out}: 8 of 8 group(s) already recorded"]
    assert again is not None and len(again) == len(first)
    # a group the backend cannot run is reported and left out; the rest is kept
    out.unlink()
    missing = {"batch_size": 1, "learning_rate": 1.0}
    record(ReplayBackend(source, workload), type(plan)([missing, configs[0]], plan.settings, 4))
    partial = Trace.load(out)
    assert partial.configs(workload) == [
        json.dumps(configs[0], sort_keys=True, separators=(",", ":"))
    ]
    assert sum("left out of the trace" in line for line in said) == 4
