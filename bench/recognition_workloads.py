"""Recognition across the bundled workloads: LeNet-5, the text CNN and the text LSTM.

    python bench/recognition.py record     # RUNS real profiled epochs of each workload
    python bench/recognition.py evaluate   # held-out recognition and false hits

Each job is one workload at one configuration: the first configuration of that workload in
the three-workload trace (`bench/traces/workloads.csv.gz`), so the trace knows the job's whole
trial at every system setting, and its best setting is the oracle's (`replay.oracle`).

`record` runs `pipetune --mode v1` on the shipped app config with one-epoch trials, each a
profiled epoch at the default setting, as the tuner's profiling epoch is. `evaluate` builds
each observation with the tuner's own code (`RecognitionService.observation` over the run's
journal) and gives it the trace's probes of its job, so the knowledge table learns the job's
best setting. Then:

* leave one run out: a model of every other run of every workload looks up the held-out run.
  It must hit its own job's cluster (`learnt_from`), and the setting must be the job's best;
* leave one workload out: a model of the other two workloads looks up every run of the third.
  Any hit is a false hit: a profile given another job's setting.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.journal import read_events  # noqa: E402
from pipetune.probing.objective import Objective  # noqa: E402
from pipetune.recognition import Observation, Recognizer, RecognizerSettings  # noqa: E402
from pipetune.recognition.service import RecognitionService  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay.oracle import best_setting, trial_cost  # noqa: E402
from pipetune.replay.trace import Trace  # noqa: E402
from pipetune.run_state import RunState  # noqa: E402

TRACE = ROOT / "bench" / "traces" / "workloads.csv.gz"
WORK = ROOT / "bench" / "results" / "recognition-workloads-runs"
OUT = ROOT / "bench" / "results"
RUNS = 4
EPOCHS = 4  # the trace's epochs per trial: the oracle's horizon
OBJECTIVE = Objective({"duration": 1.0})
DEFAULT_VALUES = {"cores": "2", "memory": "2g"}  # the shipped configs' default setting
DEFAULT = SystemSetting.of(DEFAULT_VALUES)


@dataclass(frozen=True)
class Job:
    name: str  # the workload's name in the trace and its app config
    app_config: str  # bigdl/config/NAME.json
    batch_parameter: str = "batch_size"


JOBS = (
    Job("lenet5", "lenet5.json"),
    Job("textcnn", "textcnn.json"),
    Job("textlstm", "textlstm.json"),
)


def job_config(trace: Trace, job: Job) -> dict[str, Any]:
    """The job's hyperparameters: its workload's first configuration in the trace."""
    return json.loads(trace.configs(job.name)[0])


def profile_runs(project: Path, app_config: str, app: dict[str, Any], conf: dict[str, Any]) -> None:
    """One `pipetune --mode v1` run in a fresh project dir: `app` as bigdl/config/`app_config`
    (every process a fresh one), `conf` (its one-epoch trials) as pipetune.conf."""
    shutil.rmtree(project, ignore_errors=True)
    (project / "bigdl" / "config").mkdir(parents=True)
    # Every profiled epoch from a fresh process, as a recurring job's first trial is: a
    # process reused by a later trial is warm, and its profile differs (see recognition.md)
    app = {**app, "reuseProcess": False}
    (project / "bigdl" / "config" / app_config).write_text(json.dumps(app))
    (project / "pipetune.conf").write_text(
        json.dumps({**conf, "bigdlConf": f"bigdl/config/{app_config}"})
    )
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pipetune", "--mode", "v1", "--quiet"], cwd=project, check=True
    )
    seconds = time.monotonic() - t0
    print(f"{project.name}: {conf['search']['trials']} profiled epochs in {seconds:.0f} s")


def record() -> None:
    """Profile each job RUNS times through the real CLI (one-epoch v1 trials, default setting)."""
    trace = Trace.load(TRACE)
    for job in JOBS:
        app = json.loads((ROOT / "bigdl" / "config" / job.app_config).read_text())
        app["conf"] = str(ROOT / app["conf"])
        if "dataPath" in app.get("extras", {}):
            app["extras"]["dataPath"] = str(ROOT / app["extras"]["dataPath"])
        conf = {
            "systemParameters": {name: [value] for name, value in DEFAULT_VALUES.items()},
            "hyperParameters": {k: [v] for k, v in job_config(trace, job).items()},
            "search": {"trials": RUNS, "epochs": 1, "seed": 0},
            "metrics": {"store": "none"},
            "clustering": {"enabled": False},
        }
        profile_runs(WORK / job.name, job.app_config, app, conf)


def observations(trace: Trace, job: Job) -> list[Observation]:
    """The job's recorded profiling epochs, as the tuner would observe them, with the trace's
    probes of its configuration (default first) and its best setting as the choice."""
    journals = sorted((WORK / job.name / "runs").glob("*/journal.jsonl"))
    if not journals:
        raise SystemExit(f"no runs of {job.name} under {WORK}: run `record` first")
    state = RunState.replay(read_events(journals[-1]))
    service = RecognitionService.in_memory(
        Recognizer(OBJECTIVE, RecognizerSettings()), job.batch_parameter, job.name
    )
    config = trace.configs(job.name)[0]
    labels = sorted(trace.settings(job.name, config), key=lambda s: s != DEFAULT.label())
    probes = tuple(trial_cost(trace, job.name, config, s, EPOCHS) for s in labels)
    best = best_setting(trace, job.name, config, EPOCHS, OBJECTIVE, DEFAULT)
    out = []
    for trial in state.ordered():
        obs = service.observation(trial.hyperparameters, trial.segments[0])
        if obs is None:
            raise SystemExit(f"{job.name} {trial.trial_id}: no usable profile")
        out.append(replace(obs, probes=probes, chosen=best))
    return out


def lookup_row(rec: Recognizer, obs: Observation, kind: str, fold: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    answer = rec.lookup(obs)
    latency = time.perf_counter() - t0
    own = answer.hit and answer.learnt_from == obs.job
    return {
        "fold": fold,
        "job": obs.job,
        "kind": kind,
        "hit": answer.hit,
        "own_job": own,
        "learnt_from": answer.learnt_from or "",
        "best_setting": obs.chosen.label() if obs.chosen else "",
        "given_setting": SystemSetting.of(answer.setting).label() if answer.setting else "",
        "distance": answer.distance,
        "threshold": answer.threshold,
        "latency_us": latency * 1e6,
        "reason": answer.reason,
    }


def model_of(observations: list[Observation]) -> Recognizer:
    rec = Recognizer(OBJECTIVE, RecognizerSettings())
    for obs in observations:
        rec.observe(obs)
    rec.fit()
    return rec


def evaluate() -> None:
    trace = Trace.load(TRACE)
    runs = {job.name: observations(trace, job) for job in JOBS}
    rows = []
    for held in range(RUNS):
        rec = model_of([o for obs in runs.values() for i, o in enumerate(obs) if i != held])
        rows += [lookup_row(rec, obs[held], "recurring", f"run {held}") for obs in runs.values()]
    for away in runs:
        rec = model_of([o for name, obs in runs.items() if name != away for o in obs])
        rows += [lookup_row(rec, o, "never seen", f"without {away}") for o in runs[away]]
    write(rows, runs)


def write(rows: list[dict[str, Any]], runs: dict[str, list[Observation]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "recognition.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    recurring = [r for r in rows if r["kind"] == "recurring"]
    never = [r for r in rows if r["kind"] == "never seen"]
    own = sum(r["own_job"] for r in recurring)
    right_setting = sum(r["own_job"] and r["given_setting"] == r["best_setting"] for r in recurring)
    wrong_job = sum(r["hit"] and not r["own_job"] for r in recurring)
    false_hits = sum(r["hit"] for r in never)
    best = {name: obs[0].chosen.label() if obs[0].chosen else "?" for name, obs in runs.items()}
    ratio = [r["distance"] / r["threshold"] for r in rows if r["distance"] is not None]
    lines = [
        "# Recognition across workloads (bench/recognition.py)",
        "",
        f"Jobs: {', '.join(runs)}, {RUNS} profiled runs each (one-epoch v1 trials at "
        f"{DEFAULT.label()}, recorded on this machine), each at its workload's first "
        "configuration in `bench/traces/workloads.csv.gz`. Best setting of each job by the "
        f"trace's whole {EPOCHS}-epoch trials (duration): "
        + ", ".join(f"{name} {label}" for name, label in best.items())
        + ".",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| recurring runs recognised as their own job (leave one run out) | "
        f"{own / len(recurring):.0%} ({own}/{len(recurring)}) |",
        f"| ... given their own job's best setting | {right_setting}/{len(recurring)} |",
        f"| recurring runs matched to another job | {wrong_job}/{len(recurring)} |",
        f"| runs of a workload the model never saw that hit (false hits, leave one workload "
        f"out) | {false_hits}/{len(never)} |",
        f"| distance / threshold over all look-ups | min {min(ratio):.2f}, median "
        f"{statistics.median(ratio):.2f}, max {max(ratio):.2f} |",
        f"| look-up latency (median of {len(rows)}) | "
        f"{statistics.median(r['latency_us'] for r in rows):.0f} µs |",
        "",
        "Per look-up: recognition.csv. The LeNet-5 batch-size suite: recognition-batches.md.",
    ]
    (OUT / "recognition.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
