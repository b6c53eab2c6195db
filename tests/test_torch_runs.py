"""Full runs of the PyTorch LeNet-5 (engine `torch`) through the `pipetune` command: every
mode, a trace and the oracle on it, a resume after kill -9; and a trial of two processes over
gloo on a loopback standalone cluster. Real training, so marked `spark` (and slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipetune.backends.torch_backend import TorchBackend, discover_torch
from pipetune.config import load_config
from pipetune.contract import parse_event
from pipetune.records import Decision, EpochReport, Role, SegmentRequest, SystemSetting
from pipetune.telemetry.energy_source import EnergySource
from pipetune.telemetry.estimate import CpuPowerModel, executor_processes
from pipetune.telemetry.profiler import ProfilerSetup
from tests.conftest import write_project
from tests.test_cli_run import job_processes, journal, only_run_dir, pipetune
from tests.torch_project import write_torch_project

pytestmark = pytest.mark.spark


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def bigdl_shaped_summary(tmp_path: Path) -> dict[str, Any]:
    """A BigDL project's pipetune summary, replayed from a synthetic trace: the shape a
    torch run's summary must have (the same tuner and result code, another engine)."""
    from pipetune.probing.candidates import probe_candidates
    from pipetune.replay import synthetic_trace
    from pipetune.replay.runner import replay_job

    (tmp_path / "bigdl").mkdir()
    config = load_config(write_project(tmp_path / "bigdl", {"search": {"trials": 2, "epochs": 3}}))
    settings = probe_candidates(config.system_parameters, "grid")
    trace = synthetic_trace(1, 4, settings, 3, seed=1)
    scratch = tmp_path / "bigdl" / "runs"
    scratch.mkdir()
    return replay_job(trace, trace.workloads()[0], config, "pipetune", 0, scratch=scratch).summary


def test_pipetune_mode_probes_in_place_and_summarises_as_bigdl_does(tmp_path: Path) -> None:
    conf = write_torch_project(tmp_path)
    run = pipetune("--config", str(conf), "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["mode"] == "pipetune" and summary["status"] == "finished"
    for trial in summary["trials"]:
        assert trial["status"] == "done" and trial["epochs"] == 3
        assert trial["system"]["source"] == "probed"
        assert {p["how"] for p in trial["system"]["probes"]} == {"window"}
        assert trial["processes"] == 1  # cores changed live, in the one process
        assert all(s["how"] == "live" for s in trial["system"]["switches"])
        assert trial["energy"]["source"] == "estimate" and trial["energy"]["joules"] > 0
        assert trial["profile"]["features"]["proc.cpu_user_s"] > 0.1
        phases = set(trial["time"]["startup_phases_s"])
        if trial["number"] == 0:  # a fresh process
            assert trial["reused_processes"] == 0 and {"launch", "imports"} <= phases
        else:  # the first trial's process, handed the second one
            assert trial["reused_processes"] == 1 and "handover" in phases
        assert {"data", "model", "save"} <= phases
    assert summary["best"]["accuracy"] > 0.5
    bigdl = bigdl_shaped_summary(tmp_path)
    assert set(summary) == set(bigdl)
    for key in ("time", "energy", "system"):
        assert set(summary["trials"][0][key]) == set(bigdl["trials"][0][key]), key
    assert set(summary["trials"][0]) == set(bigdl["trials"][0])


def test_v1_and_v2_modes(tmp_path: Path) -> None:
    conf = write_torch_project(tmp_path)
    modes = (("v1", "default"), ("v2", "searched"))
    for mode, _ in modes:
        run = pipetune("--config", str(conf), "--mode", mode, "--quiet", cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    for run_dir, (mode, source) in zip(runs, modes, strict=True):
        summary = summary_of(run_dir)
        assert summary["mode"] == mode and summary["status"] == "finished"
        assert [t["system"]["source"] for t in summary["trials"]] == [source, source]
        assert all(t["segments"] == 1 and t["epochs"] == 3 for t in summary["trials"])
    v1 = summary_of(runs[0])["trials"]
    assert [t["system"]["chosen"] for t in v1] == [{"cores": "2"}, {"cores": "2"}]


def test_trace_record_then_oracle_and_replay(tmp_path: Path) -> None:
    one = {"batch_size": [64], "learning_rate": [0.05], "learning_rate_decay": [0.0]}
    conf = write_torch_project(
        tmp_path, {"hyperParameters": one, "search": {"trials": 1, "epochs": 2, "seed": 0}}
    )
    trace = tmp_path / "t.csv.gz"
    rec = pipetune("trace", "record", "--config", str(conf), "--out", str(trace), cwd=tmp_path)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    from pipetune.replay import Trace

    loaded = Trace.load(trace)
    (config,) = loaded.configs("lenet5_torch")
    assert loaded.settings("lenet5_torch", config) == ["cores=1", "cores=2"]
    assert loaded.live("lenet5_torch") == {"cores"} and loaded.profile("lenet5_torch")
    rows = loaded.epochs("lenet5_torch", config, "cores=2")
    assert [r.epoch for r in rows] == [1, 2] and rows[0].samples == 1024
    oracle = pipetune(
        "--config", str(conf), "--mode", "oracle", "--oracle-trace", str(trace), "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr
    (summary,) = (tmp_path / "runs").glob("*/summary.json")  # the recording's dir has none
    (trial,) = json.loads(summary.read_text())["trials"]
    assert trial["system"]["source"] == "oracle" and trial["segments"] == 1
    offline = pipetune(
        "replay", "offline", str(trace), "--config", str(conf), "--seeds", "2",
        "--out", str(tmp_path / "off"), cwd=tmp_path,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "recorded trace" in offline.stdout


def test_killed_run_resumes_and_finishes_every_trial_exactly_once(tmp_path: Path) -> None:
    # epochs of ~100 iterations, so that the second trial is caught mid-segment
    conf = write_torch_project(
        tmp_path,
        {"search": {"trials": 2, "epochs": 4, "seed": 3}},
        {"extras": {"trainSize": 6144, "seed": 0}},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipetune", "--config", str(conf), "--mode", "v2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run_dir = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill it once the second trial has trained an epoch
        time.sleep(0.1)
        if (tmp_path / "runs").exists() and any(p.is_dir() for p in (tmp_path / "runs").iterdir()):
            run_dir = only_run_dir(tmp_path)
            events = journal(run_dir) if (run_dir / "journal.jsonl").exists() else []
            if any(e["type"] == "epoch" and e["trial"] == "t001" for e in events):
                break
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    assert run_dir is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    while job_processes(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not job_processes(run_dir)  # the lifeline stopped the torch process
    before = journal(run_dir)
    assert Counter(e["trial"] for e in before if e["type"] == "trial_done") == {"t000": 1}

    resumed = pipetune("--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = journal(run_dir)
    assert Counter(e["trial"] for e in after if e["type"] == "trial_done") == {"t000": 1, "t001": 1}
    resume_at = next(i for i, e in enumerate(after) if e["type"] == "run_resumed")
    assert not any(
        e["type"] == "segment_started" and e["trial"] == "t000" for e in after[resume_at:]
    )
    summary = summary_of(run_dir)
    assert summary["status"] == "finished"
    assert [t["status"] for t in summary["trials"]] == ["done", "done"]
    meta = run_dir / "trials" / "t001" / "checkpoint" / "meta.json"
    assert json.loads(meta.read_text())["epochs_done"] == 4


def command_line(proc: psutil.Process) -> list[str]:
    """A process's command line; none for one that ended (or is a zombie) meanwhile."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def test_a_trial_of_two_processes_on_a_standalone_cluster(tmp_path: Path) -> None:
    """TorchDistributor with local_mode=False: two ranks over gloo under the cluster's
    executor; the energy estimate and the profile cover them (found by the app's id)."""
    from tests.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path) as master:
        two = {"processes": 2, "master": master}
        config = load_config(
            write_torch_project(tmp_path, {"systemParameters": {"cores": ["2"]}}, two)
        )
        backend = TorchBackend(
            config.app,
            discover_torch(config.app),
            EnergySource(CpuPowerModel(10.0, 5.0)),
            cwd=tmp_path,
            profiler=ProfilerSetup.detect(),
        )
        ranks: list[int] = []

        def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
            app_id = start_event(tmp_path)["app_id"]
            under = [" ".join(command_line(p)) for p in executor_processes(app_id)]
            # a rank runs the script; pyspark's wrapper and torchrun are modules (-m) naming it
            ranks.append(sum("lenet5_torch.py" in c and " -m " not in c for c in under))

        hps = {"batch_size": 64, "learning_rate": 0.05, "learning_rate_decay": 0.0}
        request = SegmentRequest(
            "t0",
            SystemSetting.of({"cores": "2"}),
            2,
            Role.PROBE,
            hps,
            str(tmp_path / "t0" / "checkpoint"),
            str(tmp_path / "t0" / "seg.log"),
            profile=True,
            decide_after=1,
        )
        result = backend.run_segment(request, on_epoch, lambda pause: Decision(pause.setting))
        backend.close()
    start = start_event(tmp_path)
    assert start["processes"] == 2 and result.app_id.startswith("app-")
    assert [e.epoch for e in result.epochs] == [1, 2]
    assert [e.system["cores"] for e in result.epochs] == [1, 1]  # 2 cores, 2 processes
    assert ranks == [2, 2]  # both ranks under the application's executor here
    assert result.energy.joules > 0 and result.energy.source == "estimate"
    profile = result.stints[0].profile
    assert profile is not None and profile["features"]["proc.cpu_user_s"] > 0.1, (
        profile,
        result.notes,
    )
    log = (tmp_path / "t0" / "seg.log").read_text()
    assert f"--processes 2 --master {master}" in log


def start_event(tmp_path: Path) -> dict[str, Any]:
    for line in (tmp_path / "t0" / "seg.log").read_text().splitlines():
        event = parse_event(line) if line.startswith("[pipetune]") else None
        if event and event["event"] == "start":
            return event
    return {}
