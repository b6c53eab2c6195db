"""Full runs of the `pipetune` command on real BigDL training in local Spark."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_project
from tests.influxd import Influxd, require_influxd

pytestmark = pytest.mark.spark
SMALL = {
    "hyperParameters": {
        "batch_size": [32, 64],
        "learning_rate": [0.05, 0.1],
        "learning_rate_decay": [0.0, 0.001],
    },
    "search": {"trials": 2, "epochs": 3, "seed": 3},
    # epochs of 10-19 iterations here (600 samples): windows of 2 + 4 fit two or three times
    "probing": {"window_warmup": 2, "window_min": 4},
}


def pipetune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipetune", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def only_run_dir(root: Path) -> Path:
    runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def journal(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


def test_full_pipetune_run_2_trials_x_3_epochs(tmp_path: Path) -> None:
    require_influxd()
    with Influxd(tmp_path / "influxd") as influxd:
        metrics = {"store": "influxdb", "port": influxd.port, "database": "tuning"}
        # default switching ("always"): the trial trains at the argmin of its probes however
        # small the gain (the original chose the argmax); when-it-pays: test_continuation.py
        conf = write_project(tmp_path, {**SMALL, "metrics": metrics})
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipetune", "--config", str(conf), "--quiet"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # InfluxDB goes away during the first trial (after its second epoch) and comes back
        # during the second (after its first): the first trial's points, written when its
        # process ends, must wait in the spool, none lost.
        stopped_at = None
        while proc.poll() is None:
            time.sleep(0.5)
            runs = tmp_path / "runs"
            dirs = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
            if not dirs or not (dirs[0] / "journal.jsonl").exists():
                continue
            events = journal(dirs[0])
            epochs_seen = sum(e["type"] == "epoch" for e in events)
            if stopped_at is None and epochs_seen >= 2:
                influxd.stop()
                stopped_at = epochs_seen
            elif stopped_at is not None and not influxd.running and epochs_seen >= 4:
                assert any(e["type"] == "segment_done" for e in events)  # written while down
                influxd.start()
        out = proc.stdout.read() if proc.stdout else ""
        assert proc.returncode == 0, out
        assert stopped_at is not None and influxd.running
        run_dir = only_run_dir(tmp_path)
        check_summary(run_dir)
        # the documented schema, read back with the real influx CLI
        run = run_dir.name
        epochs = influxd.influx_cli(
            "tuning", f"SELECT accuracy, duration_s FROM epoch WHERE run = '{run}'"
        )
        assert len(epochs.strip().splitlines()) == 1 + 6  # header + 2 trials x 3 epochs
        profiles = influxd.influx_cli("tuning", "SELECT * FROM profile")
        assert "proc.cpu_user_s" in profiles.splitlines()[0]
        assert len(profiles.strip().splitlines()) == 1 + 2  # one profiling epoch per trial
        power = influxd.influx_cli("tuning", "SELECT watts FROM power WHERE source = 'estimate'")
        assert len(power.strip().splitlines()) > 10


def check_summary(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mode"] == "pipetune" and summary["status"] == "finished"
    assert len(summary["trials"]) == 2
    events = journal(run_dir)
    epochs = list(csv.DictReader((run_dir / "epochs.csv").read_text().splitlines()))
    for trial in summary["trials"]:
        assert trial["status"] == "done" and trial["epochs"] == 3
        probes = trial["system"]["probes"]
        # budget = epochs - 1 = 2: the default and the live one, each over a window of
        # iterations in epoch 2 or 3, after the warm-up epoch at the widest cores (the
        # default's); the default again if cores=1 beat it later in the process
        default = {"cores": "2", "memory": "2g"}
        assert [p["setting"] for p in probes][:2] == [default, {"cores": "1", "memory": "2g"}]
        assert len(probes) in (2, 3) and {p["how"] for p in probes} == {"window"}
        for p in probes:
            w = p["window"]
            assert w["iterations"] >= 2 and w["warmup_iterations"] == 2
            low, high = w["interval_s"]
            assert 0 < low <= w["s_per_iteration"] <= high
            # steady_s is rounded to 3 decimals in the summary, s_per_iteration to 5
            assert p["steady_s"] == pytest.approx(
                w["s_per_iteration"] * w["epoch_iterations"], rel=1e-3, abs=1e-3
            )
            assert p["energy_j"] > 0 and w["energy_j_per_iteration"] > 0
            assert p["epoch"] in (2, 3)
        # the default stays unless the other is surely faster (the decision says which)
        chosen = trial["system"]["chosen"]
        assert trial["system"]["source"] == "probed"
        why = trial["system"]["decisions"][-1]["why"]
        if chosen == default:
            assert "keeping the default" in why or "fastest" in why, why
        else:
            assert "beats the default" in why, why
        # the accuracy is the final epoch's
        mine = [r for r in epochs if r["trial"] == trial["id"]]
        assert [int(r["epoch"]) for r in mine] == [1, 2, 3]
        assert trial["accuracy"] == pytest.approx(float(mine[-1]["accuracy"]))
        # time and energy include every probe and every start-up
        walls = [
            e["wall_s"] for e in events if e["type"] == "segment_done" and e["trial"] == trial["id"]
        ]
        assert len(walls) == trial["segments"] >= 4  # warm-up, 2+ windows, training
        # the probes and the training ran in one process: cores changed live
        assert trial["processes"] == 1, trial["system"]["switches"]
        assert all(s["how"] == "live" for s in trial["system"]["switches"])
        assert trial["time"]["total_s"] == pytest.approx(sum(walls), abs=0.01)
        t = trial["time"]
        assert t["total_s"] == pytest.approx(t["train_s"] + t["probe_s"] + t["startup_s"], abs=0.01)
        assert t["startup_s"] > 0.5 and t["probe_s"] > 0
        phases = t["startup_phases_s"]  # one process: its launch, the app's phases, save, exit
        assert {"data", "model", "save", "teardown"} <= set(phases)
        assert sum(phases.values()) <= t["startup_s"] + 1.0
        if trial["number"] == 0:  # a fresh process: launched, with a new Spark context
            assert trial["reused_processes"] == 0
            assert {"launch", "spark context"} <= set(phases)
        else:  # the first trial's process, handed the second trial (reuseProcess)
            assert trial["reused_processes"] == 1, phases
            assert "handover" in phases and "launch" not in phases
        assert trial["energy"]["source"] == "estimate" and trial["energy"]["joules"] > 0
        # each trial has its own checkpoint
        ckpt = run_dir / "trials" / trial["id"] / "checkpoint"
        assert json.loads((ckpt / "meta.json").read_text())["epochs_done"] == 3
        # the first epoch is profiled over its own window, start-up excluded
        profile = trial["profile"]
        assert profile["source"] in ("perf+proc", "proc")
        assert profile["features"]["proc.cpu_user_s"] > 0.5  # CPU-seconds per second
        assert 0 < profile["window_s"] < float(mine[0]["duration_s"]) + 5
    assert summary["best"]["accuracy"] == max(t["accuracy"] for t in summary["trials"])
    assert summary["best"]["accuracy"] > 0.5


def job_processes(run_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names the run directory (spark-submit and its JVM)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if str(run_dir) in cmdline and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def test_killed_run_resumes_and_finishes_every_trial_exactly_once(tmp_path: Path) -> None:
    conf = write_project(tmp_path, SMALL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipetune", "--config", str(conf), "--mode", "v2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600
    run_dir = None
    while time.monotonic() < deadline:  # kill it once the second trial is mid-segment
        time.sleep(1)
        if (tmp_path / "runs").exists() and any(p.is_dir() for p in (tmp_path / "runs").iterdir()):
            run_dir = only_run_dir(tmp_path)
            events = journal(run_dir) if (run_dir / "journal.jsonl").exists() else []
            if any(e["type"] == "epoch" and e["trial"] == "t001" for e in events):
                break
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    assert run_dir is not None
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no chance to clean up
    proc.wait()
    # The segment it was running (t001's 3 epochs, saved at its end) is stopped with it, and
    # does not train on into the checkpoint that the resume trains from.
    deadline = time.monotonic() + 60
    while job_processes(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not job_processes(run_dir)
    meta = run_dir / "trials" / "t001" / "checkpoint" / "meta.json"
    assert not meta.exists() or json.loads(meta.read_text())["epochs_done"] < 3
    before = journal(run_dir)
    assert Counter(e["trial"] for e in before if e["type"] == "trial_done") == {"t000": 1}

    resumed = pipetune("--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = journal(run_dir)
    assert Counter(e["trial"] for e in after if e["type"] == "trial_done") == {"t000": 1, "t001": 1}
    # the finished trial was not re-run: no segment of t000 started after the resume
    resume_at = next(i for i, e in enumerate(after) if e["type"] == "run_resumed")
    assert not any(
        e["type"] == "segment_started" and e["trial"] == "t000" for e in after[resume_at:]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert [t["status"] for t in summary["trials"]] == ["done", "done"]
    assert all(t["system"]["source"] == "searched" and t["epochs"] == 3 for t in summary["trials"])
    assert [t["hyperparameters"] for t in summary["trials"]] == [
        e["hyperparameters"] for e in before if e["type"] == "trial_started"
    ]
    # the default store: SQLite, one epoch point per epoch that was journaled as done
    from pipetune.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "runs" / "metrics.sqlite")
    assert len(store.query("epoch", {"run": run_dir.name})) == 6


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    # 6 epochs: after the first is journaled, the run has seconds left to be interrupted in
    conf = write_project(tmp_path, {**SMALL, "search": {"trials": 1, "epochs": 6, "seed": 3}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipetune", "--config", str(conf), "--mode", "v1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.5)
        runs = tmp_path / "runs"
        dirs = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
        journaled = dirs and (dirs[0] / "journal.jsonl").exists()
        if journaled and any(e["type"] == "epoch" for e in journal(dirs[0])):
            break
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    run_dir = only_run_dir(tmp_path)
    assert f"pipetune --resume {run_dir}" in out
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    assert journal(run_dir)[-1]["type"] == "run_interrupted"
    leftover = subprocess.run(
        ["pgrep", "-f", str(run_dir / "trials")], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == ""  # no JVM or app process left behind

    resumed = pipetune("--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["trials"][0]["epochs"] == 6


def test_a_recurring_job_is_recognised_on_its_second_run(tmp_path: Path) -> None:
    # The noise prior lets a model learnt from one 2-trial run accept the next run's repeats:
    # at default settings on the bundled workload 4/4 (bench/results/recognition-savings.md).
    # This project's epochs last ~2 s (600 samples), so its profiles are noisier: tolerance 2.
    clustering = {"path": "model.json", "tolerance": 2.0}
    conf = write_project(tmp_path, {**SMALL, "clustering": clustering})
    first = pipetune("--config", str(conf), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "model.json").is_file()
    second = pipetune("--config", str(conf), "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    before, after = (json.loads((r / "summary.json").read_text())["trials"] for r in runs)
    # What the first run found best, per batch size: the knowledge table's cell is keyed by
    # (cluster, batch size) and the latest probes of a cell win (see knowledge.py).
    best = {t["hyperparameters"]["batch_size"]: t["system"]["chosen"] for t in before}
    for old, new in zip(before, after, strict=True):
        assert old["system"]["source"] == "probed" and old["probe_epochs"] == 0
        assert old["probe_windows"] >= 2
        assert new["hyperparameters"] == old["hyperparameters"]  # same seed, same trials
        assert new["recognition"]["hit"], new["recognition"]
        assert new["recognition"]["distance"] <= new["recognition"]["threshold"]
        assert new["system"]["source"] == "recognized"
        assert new["probe_epochs"] == 0 and new["system"]["probes"] == []
        assert new["time"]["probe_s"] == 0
        taught = best[new["hyperparameters"]["batch_size"]]
        assert new["recognition"]["setting"] == taught
        # it trains there, unless 2 epochs there would not repay a restart (the decision says)
        if new["system"]["chosen"] != taught:
            assert new["system"]["chosen"] == new["system"]["default"]
            decisions = [
                e for e in journal(runs[1]) if e["type"] == "decision" and e["trial"] == new["id"]
            ]
            assert decisions and "would not repay a start-up" in decisions[0]["why"]
        assert new["segments"] == 2  # the profiling epoch, then the rest at the setting


def test_trace_record_then_oracle_and_replay_on_the_recorded_trace(tmp_path: Path) -> None:
    # One configuration × two settings × two epochs recorded live; the oracle then runs a
    # trial at the setting the trace says is cheapest, and a replay runs on the same file.
    conf = write_project(
        tmp_path,
        {
            "systemParameters": {"cores": ["2", "1"]},
            "hyperParameters": {
                "batch_size": [32],
                "learning_rate": [0.05],
                "learning_rate_decay": [0.0],
            },
            "search": {"trials": 1, "epochs": 2, "seed": 0},
        },
    )
    trace = tmp_path / "t.csv.gz"
    rec = pipetune("trace", "record", "--config", str(conf), "--out", str(trace), cwd=tmp_path)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    from pipetune.probing.objective import Objective
    from pipetune.records import SystemSetting
    from pipetune.replay import Trace
    from pipetune.replay.oracle import best_setting

    loaded = Trace.load(trace)
    (config,) = loaded.configs("lenet5")
    assert loaded.settings("lenet5", config) == ["cores=1", "cores=2"]
    assert loaded.profile("lenet5") is not None and not loaded.is_synthetic
    rows = loaded.epochs("lenet5", config, "cores=2")
    assert [r.epoch for r in rows] == [1, 2] and rows[0].startup_s > 1 and rows[0].samples == 600
    # each setting's group left its process idle; one more epoch in it measured reuse there
    assert rec.stdout.count("in the idle process: start-up") == 2, rec.stdout
    for setting in ("cores=1", "cores=2"):
        reuse = loaded.reuse("lenet5", config, setting)
        fresh = loaded.epochs("lenet5", config, setting)[0]
        assert reuse is not None and 0 < reuse.startup_s < fresh.startup_s
        assert 0 < reuse.epoch1_ratio < 2
    best = best_setting(
        loaded, "lenet5", config, 2, Objective({"duration": 1.0}), SystemSetting.parse("cores=2")
    )
    run = pipetune(
        "--config",
        str(conf),
        "--mode",
        "oracle",
        "--oracle-trace",
        str(trace),
        "--quiet",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (summary,) = (tmp_path / "runs").glob("*/summary.json")  # the recording's dir has none
    (trial,) = json.loads(summary.read_text())["trials"]
    assert trial["system"]["source"] == "oracle" and trial["segments"] == 1
    assert SystemSetting.of(trial["system"]["chosen"]) == best
    offline = pipetune(
        "replay",
        "offline",
        str(trace),
        "--config",
        str(conf),
        "--seeds",
        "2",
        "--out",
        str(tmp_path / "off"),
        cwd=tmp_path,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "recorded trace" in offline.stdout and "oracle check: no trial" in offline.stdout
