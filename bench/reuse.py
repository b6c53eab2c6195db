"""What reusing a job's process across trials buys: the same runs with the start-up cuts on
and off, interleaved, several repetitions.

    python bench/reuse.py [--reps 3] [--strategies v1,pipetune-cold,pipetune-recurring]

One workload (the bundled LeNet-5, 8,000 samples, local Spark, the shipped system parameters
cores ["2", "1"] and memory ["2g", "1g"]), 4 trials × 4 epochs over a 4-point grid (batch 128
and 256 × learning rate 0.05 and 0.1). Each strategy runs twice per repetition, one arm after
the other (their order alternating by repetition):

    off   `reuseProcess` false and `classDataSharing` false: a fresh spark-submit per segment
          from an unshared JVM, as before issue 12
    on    both true (the defaults): the trials share a process, which keeps its Spark context
          and its data; the driver JVM maps the class-data-sharing archive

`pipetune-recurring` uses a recognition model trained by one earlier probing run (the same
copy for both arms). Tuning time is the run's `totals.time_s` (every segment, start-ups
included); wall time is the whole command seen from outside (also the CLI's own start and the
idle process's retirement at the end). Results: bench/results/reuse.md and reuse-runs.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import compare  # noqa: E402  (bench/compare.py: one run of the CLI, its summary)

WORK = ROOT / "bench" / "results" / "reuse-runs"
OUT = ROOT / "bench" / "results"
ARMS = ("off", "on")
STRATEGIES = ("v1", "pipetune-cold", "pipetune-recurring")
EPOCHS, TRIALS = 4, 4


def project(arm: str) -> Path:
    root = WORK / arm
    shutil.rmtree(root, ignore_errors=True)
    (root / "bigdl" / "config").mkdir(parents=True)
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    app["extras"] = {k: v for k, v in app["extras"].items() if k != "dataPath"}
    app["reuseProcess"] = app["classDataSharing"] = arm == "on"
    (root / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(app, indent=1))
    conf = {
        "bigdlConf": "bigdl/config/lenet5.json",
        "systemParameters": {"cores": ["2", "1"], "memory": ["2g", "1g"]},
        "hyperParameters": {
            "batch_size": [128, 256],
            "learning_rate": [0.05, 0.1],
            "learning_rate_decay": [0.0],
        },
        "search": {"sampler": "grid", "trials": TRIALS, "epochs": EPOCHS, "seed": 0},
        "metrics": {"store": "sqlite", "path": "runs/metrics.sqlite"},
        "clustering": {"path": "model.json"},
    }
    (root / "pipetune.conf").write_text(json.dumps(conf, indent=1))
    return root


def pipetune(root: Path, *args: str) -> dict[str, Any]:
    """One run of the real CLI on the project's pipetune.conf (compare.py's runner)."""
    return compare.pipetune(root, "--config", "pipetune.conf", *args)


def run_strategy(root: Path, strategy: str, model: Path) -> dict[str, Any]:
    if strategy == "v1":
        return pipetune(root, "--mode", "v1")
    if strategy == "pipetune-cold":
        return pipetune(root, "--no-recognition")
    shutil.copy(model, root / "model.json")  # the same model at every run
    return pipetune(root)


def row(rep: int, strategy: str, arm: str, summary: dict[str, Any]) -> dict[str, Any]:
    trials = summary["trials"]
    best = summary["best"]
    return {
        "rep": rep,
        "strategy": strategy,
        "arm": arm,
        "tuning_s": summary["totals"]["time_s"],
        "wall_s": round(summary["bench_wall_s"], 1),
        "startup_s": round(sum(t["time"]["startup_s"] for t in trials), 1),
        "segments": sum(t["segments"] for t in trials),
        "best_accuracy": best["accuracy"] if best else None,
        "chosen": ";".join(
            ",".join(f"{k}={v}" for k, v in (t["system"]["chosen"] or {}).items()) for t in trials
        ),
    }


def write_runs(rows: list[dict[str, Any]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "reuse-runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_runs() -> list[dict[str, Any]]:
    with open(OUT / "reuse-runs.csv", newline="") as f:
        return [
            {k: v if k in ("strategy", "arm", "chosen") else float(v) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def report(rows: list[dict[str, Any]], reps: int) -> str:
    lines = [
        "# Process reuse and start-up cuts, on and off",
        "",
        f"`python bench/reuse.py --reps {reps}`: LeNet-5 (BigDL, 8,000 augmented digits, "
        f"local Spark), {TRIALS} trials × {EPOCHS} epochs (grid: batch 128/256 × learning rate "
        "0.05/0.1). off: `reuseProcess` and `classDataSharing` false (a fresh, unshared "
        "spark-submit per segment); on: both true (the defaults). Medians of the repetitions; "
        "ratios on / off per repetition as median [min–max].",
        "",
        "| strategy | tuning s off | tuning s on | on / off | wall s off | wall s on | "
        "on / off (wall) | start-ups s off | on | best accuracy off | on |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for strategy in STRATEGIES:
        pairs = [
            (r, o)
            for r in rows
            for o in rows
            if r["strategy"] == o["strategy"] == strategy
            and r["rep"] == o["rep"]
            and (r["arm"], o["arm"]) == ("off", "on")
        ]
        if not pairs:
            continue

        def med(arm: int, key: str, pairs: list = pairs) -> float:
            return statistics.median(p[arm][key] for p in pairs if p[arm][key] is not None)

        def ratio(key: str, pairs: list = pairs) -> str:
            values = [on[key] / off[key] for off, on in pairs]
            return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"

        lines.append(
            f"| {strategy} | {med(0, 'tuning_s'):.1f} | {med(1, 'tuning_s'):.1f} | "
            f"{ratio('tuning_s')} | {med(0, 'wall_s'):.1f} | {med(1, 'wall_s'):.1f} | "
            f"{ratio('wall_s')} | {med(0, 'startup_s'):.1f} | {med(1, 'startup_s'):.1f} | "
            f"{med(0, 'best_accuracy'):.3f} | {med(1, 'best_accuracy'):.3f} |"
        )
    lines += [
        "",
        "tuning s: every segment of every trial (summary.json `totals.time_s`); wall s: the "
        "command from outside (with the CLI's start and, on, the idle process's retirement). "
        "start-ups s: the trials' time outside their epochs (`time.startup_s`, summed).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--report-only", action="store_true", help="the table again from reuse-runs.csv"
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the runs of other strategies already in reuse-runs.csv (one table for all)",
    )
    args = parser.parse_args()
    if args.report_only:
        loaded = read_runs()
        print(report(loaded, len({r["rep"] for r in loaded})))
        return
    strategies = [s for s in args.strategies.split(",") if s]
    if set(strategies) - set(STRATEGIES):
        parser.error(f"strategies: from {', '.join(STRATEGIES)}")
    roots = {arm: project(arm) for arm in ARMS}
    model = WORK / "model-trained.json"
    if "pipetune-recurring" in strategies:
        # a model that has seen this job: one earlier probing run (not counted)
        pipetune(roots["on"])
        shutil.copy(roots["on"] / "model.json", model)
    rows: list[dict[str, Any]] = []
    if args.append and (OUT / "reuse-runs.csv").exists():
        rows = [r for r in read_runs() if r["strategy"] not in strategies]
    for rep in range(args.reps):
        for strategy in strategies:
            for arm in ARMS if rep % 2 == 0 else tuple(reversed(ARMS)):
                rows.append(row(rep, strategy, arm, run_strategy(roots[arm], strategy, model)))
                r = rows[-1]
                print(
                    f"rep {rep} {strategy:19} {arm:3} tuning {r['tuning_s']:7.1f} s  wall "
                    f"{r['wall_s']:7.1f} s  start-ups {r['startup_s']:6.1f} s  acc "
                    f"{r['best_accuracy']}",
                    flush=True,
                )
                write_runs(rows)  # after every run: an interrupted bench keeps them
    text = report(rows, args.reps)
    (OUT / "reuse.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
