"""Recognition benchmark: real profiles of clearly different jobs, evaluated on held-out runs.

    python bench/recognition.py record   # the three bundled workloads (recognition_workloads.py)
    python bench/recognition.py evaluate # their held-out recognition -> recognition.md
    python bench/recognition.py record-batches   # LeNet-5 at four batch sizes (below)
    python bench/recognition.py evaluate-batches # -> recognition-batches.md
    python bench/recognition.py savings [REPS]  # a job run twice: probed vs recognised trials
    python bench/recognition.py savings-report [REPS]  # its table again, from the runs kept

Jobs are the bundled LeNet-5 at very different batch sizes (the training loop's shape changes
with it). `record-batches` runs `pipetune --mode v1` with one-epoch trials, so each trial is
one profiled epoch; profiles come from each run's summary.json. `evaluate-batches` trains the
recognizer on every run but one of each known job, then looks up the held-out run (must hit
its own job's cluster) and every run of the never-seen job (must be unknown), rotating the
held-out run.
Results go to bench/results/recognition-batches.md and .csv.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.probing.objective import Objective  # noqa: E402
from pipetune.probing.selection import ProbeResult  # noqa: E402
from pipetune.recognition import Observation, Recognizer, RecognizerSettings  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.telemetry.profile import JobProfile  # noqa: E402

WORK = ROOT / "bench" / "results" / "recognition-runs"
OUT = ROOT / "bench" / "results"
KNOWN = {"lenet-b16": 16, "lenet-b128": 128, "lenet-b1024": 1024}
UNSEEN = {"lenet-b4": 4}
RUNS = 4


def lenet5_app() -> dict[str, Any]:
    """The bundled LeNet-5 app config, at 2,048 samples, for a project dir under WORK."""
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    app["extras"] = {"trainSize": 2048, "seed": 0}
    return app


def fresh_project(name: str) -> Path:
    """An empty project dir under WORK with the bundled LeNet-5 app config (2,048 samples)."""
    project = WORK / name
    shutil.rmtree(project, ignore_errors=True)
    (project / "bigdl" / "config").mkdir(parents=True)
    (project / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(lenet5_app()))
    return project


def record() -> None:
    """Profile every job RUNS times through the real CLI (one-epoch v1 trials)."""
    from recognition_workloads import profile_runs

    for job, batch in {**KNOWN, **UNSEEN}.items():
        conf = {
            "systemParameters": {"cores": ["2"]},
            "hyperParameters": {
                "batch_size": [batch],
                "learning_rate": [0.05],
                "learning_rate_decay": [0.0],
            },
            "search": {"trials": RUNS, "epochs": 1, "seed": 0},
            "metrics": {"store": "none"},
            "clustering": {"enabled": False},
        }
        profile_runs(WORK / job, "lenet5.json", lenet5_app(), conf)


def observations(job: str, batch: int) -> list[Observation]:
    summaries = sorted((WORK / job / "runs").glob("*/summary.json"))
    out = []
    for trial in json.loads(summaries[-1].read_text())["trials"]:
        profile = JobProfile.from_dict(trial["profile"])
        probe_s = trial["time"]["train_s"]
        # one-setting "probes" so the knowledge table has a cell; the setting is the job's name
        probe = ProbeResult(
            SystemSetting.of({"job": job}), probe_s, trial["energy"]["joules"], "estimate"
        )
        out.append(
            Observation(
                profile,
                batch,
                probe_s,
                2048,
                trial["energy"]["joules"] / 3,
                "estimate",
                (probe,),
                job,
            )
        )
    return out


def evaluate() -> None:
    known = {job: observations(job, b) for job, b in KNOWN.items()}
    unseen = [o for job, b in UNSEEN.items() for o in observations(job, b)]
    rows, latencies = [], []
    for held in range(RUNS):
        rec = Recognizer(Objective({"duration": 1.0}), RecognizerSettings())
        for i in range(RUNS):
            for obs_list in known.values():
                if i != held:
                    rec.observe(obs_list[i])
        rec.fit()
        for job, obs_list in known.items():
            t0 = time.perf_counter()
            answer = rec.lookup(obs_list[held])
            latencies.append(time.perf_counter() - t0)
            own = answer.hit and answer.setting == {"job": job}
            rows.append(
                {
                    "fold": held,
                    "job": job,
                    "kind": "recurring",
                    "hit": answer.hit,
                    "own_job": own,
                    "distance": answer.distance,
                    "threshold": answer.threshold,
                    "reason": answer.reason,
                }
            )
        for obs in unseen:
            answer = rec.lookup(obs)
            rows.append(
                {
                    "fold": held,
                    "job": obs.job,
                    "kind": "never seen",
                    "hit": answer.hit,
                    "own_job": False,
                    "distance": answer.distance,
                    "threshold": answer.threshold,
                    "reason": answer.reason,
                }
            )
    recurring = [r for r in rows if r["kind"] == "recurring"]
    never = [r for r in rows if r["kind"] == "never seen"]
    recognised = sum(r["own_job"] for r in recurring) / len(recurring)
    false_hits = sum(r["hit"] for r in never) / len(never)
    within = sum(r["distance"] <= r["threshold"] for r in never)
    wrong_job = sum(r["hit"] and not r["own_job"] for r in recurring)
    median_us = statistics.median(latencies) * 1e6
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "recognition-batches.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = [
        "# Recognition on real profiles: LeNet-5 at four batch sizes (bench/recognition.py)",
        "",
        f"Jobs: {', '.join(KNOWN)} (known, {RUNS} runs each), {', '.join(UNSEEN)} (never seen).",
        f"Leave-one-run-out over {RUNS} folds; profiles recorded on this machine.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| recurring runs recognised as their own job | {recognised:.0%} "
        f"({sum(r['own_job'] for r in recurring)}/{len(recurring)}) |",
        f"| recurring runs matched to another job | {wrong_job}/{len(recurring)} |",
        f"| never-seen runs wrongly matched (false hits) | {false_hits:.0%} "
        f"({sum(r['hit'] for r in never)}/{len(never)}) |",
        f"| never-seen runs within a cluster's threshold (profile level) | {within}/{len(never)} |",
        f"| look-up latency (median of {len(latencies)}) | {median_us:.0f} µs |",
    ]
    report += small_models(known, unseen)
    (OUT / "recognition-batches.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


def small_models(known: dict[str, list[Observation]], unseen: list[Observation]) -> list[str]:
    """A model that has seen one job twice (one 2-trial run): does it take the job's other runs,
    and does it turn away every other job? Counted at the profile level (distance within the
    threshold), stricter than a hit, since another batch size would miss on the table anyway."""
    import itertools

    own, own_n, other, other_n = 0, 0, 0, 0
    own_ratio, other_ratio = [], []
    for job, runs in known.items():
        for pair in itertools.combinations(range(RUNS), 2):
            rec = Recognizer(Objective({"duration": 1.0}), RecognizerSettings(min_observations=2))
            for i in pair:
                rec.observe(runs[i])
            for i in set(range(RUNS)) - set(pair):
                answer = rec.lookup(runs[i])
                own += answer.hit
                own_n += 1
                own_ratio.append(answer.distance / answer.threshold)
            strangers = [o for j, rs in known.items() if j != job for o in rs] + unseen
            for obs in strangers:
                answer = rec.lookup(obs)
                assert answer.distance is not None and answer.threshold is not None
                other += answer.distance <= answer.threshold
                other_n += 1
                other_ratio.append(answer.distance / answer.threshold)
    return [
        "",
        "## Models that have seen one job twice (one 2-trial run)",
        "",
        f"For each job and each pair of its {RUNS} runs: a model from that pair alone.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| the job's other runs recognised | {own / own_n:.0%} ({own}/{own_n}) |",
        f"| other jobs' runs within the threshold | {other / other_n:.0%} ({other}/{other_n}) |",
        f"| distance / threshold, the job's own runs | median {statistics.median(own_ratio):.2f}, "
        f"max {max(own_ratio):.2f} |",
        f"| distance / threshold, other jobs' runs | median {statistics.median(other_ratio):.2f}, "
        f"min {min(other_ratio):.2f} |",
    ]


def savings(reps: int = 2) -> None:
    """Each repetition: a fresh model, the same 2-trial job run twice (same seed, so the same
    trials). The first run probes, the second should recognise every trial; compare per trial."""
    for rep in range(reps):
        project = fresh_project(f"savings-{rep}")
        conf = {
            "bigdlConf": "bigdl/config/lenet5.json",
            "systemParameters": {"cores": ["2", "1"], "memory": ["2g", "1g"]},
            "hyperParameters": {
                "batch_size": [64],
                "learning_rate": [0.05],
                "learning_rate_decay": [0.0],
            },
            "search": {"trials": 2, "epochs": 4, "seed": rep},
            "metrics": {"store": "none"},
            "clustering": {"path": "model.json"},
        }
        (project / "pipetune.conf").write_text(json.dumps(conf))
        for _ in range(2):
            subprocess.run([sys.executable, "-m", "pipetune", "--quiet"], cwd=project, check=True)
    savings_report(reps)


def savings_report(reps: int) -> None:
    """The table from the runs `savings` left under WORK (re-runnable without training)."""
    rows = []
    for rep in range(reps):
        project = WORK / f"savings-{rep}"
        first, second = (
            json.loads(p.read_text())["trials"] for p in sorted(project.glob("runs/*/summary.json"))
        )
        # What the first run taught, per batch size: the latest probed choice (the table's rule)
        taught = {t["hyperparameters"]["batch_size"]: t["system"]["chosen"] for t in first}
        for a, b in zip(first, second, strict=True):
            rows.append(
                {
                    "rep": rep,
                    "trial": a["id"],
                    "probed_s": a["time"]["total_s"],
                    "recognised_s": b["time"]["total_s"],
                    "probed_j": a["energy"]["joules"],
                    "recognised_j": b["energy"]["joules"],
                    "source": b["system"]["source"],
                    "probe_epochs": b["probe_epochs"],
                    "segments": b["segments"],
                    "distance_over_threshold": (b["recognition"] or {}).get("distance", 0)
                    / ((b["recognition"] or {}).get("threshold") or 1),
                    "as_taught": b["system"]["chosen"]
                    == taught[b["hyperparameters"]["batch_size"]],
                    "same_as_this_trial_probed": a["system"]["chosen"] == b["system"]["chosen"],
                }
            )
    hits = [r for r in rows if r["source"] == "recognized"]
    time_ratio = [r["recognised_s"] / r["probed_s"] for r in hits]
    energy_ratio = [r["recognised_j"] / r["probed_j"] for r in hits]
    with open(OUT / "recognition-savings.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# A recognised trial against the same trial probed (bench/recognition.py savings)",
        "",
        f"{reps} repetitions of a 2-trial LeNet-5 job (batch 64, 2,048 samples, 4 epochs, default "
        "clustering settings) run twice with a fresh model: the first run probes (3 probe "
        "epochs per trial), the second should recognise.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| second-run trials recognised (zero probe epochs) | {len(hits)}/{len(rows)} |",
        f"| distance / threshold of the look-ups | max "
        f"{max(r['distance_over_threshold'] for r in rows):.2f} |",
        f"| recognised setting = what the first run taught for the batch size | "
        f"{sum(r['as_taught'] for r in hits)}/{len(hits)} |",
        f"| ... = what this same trial chose when probed | "
        f"{sum(r['same_as_this_trial_probed'] for r in hits)}/{len(hits)} (both trials share "
        "batch 64, so the later one's choice is the one taught) |",
    ]
    if hits:
        lines += [
            f"| time, recognised / probed (median [min–max]) | {statistics.median(time_ratio):.2f} "
            f"[{min(time_ratio):.2f}–{max(time_ratio):.2f}] |",
            f"| energy (estimate), recognised / probed | {statistics.median(energy_ratio):.2f} "
            f"[{min(energy_ratio):.2f}–{max(energy_ratio):.2f}] |",
        ]
    (OUT / "recognition-savings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "evaluate"
    if command == "savings":
        savings(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    elif command == "savings-report":
        savings_report(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    else:
        import recognition_workloads

        {
            "record": recognition_workloads.record,
            "evaluate": recognition_workloads.evaluate,
            "record-batches": record,
            "evaluate-batches": evaluate,
        }[command]()
