"""Live runs against a replay of the same workload: do they choose the same system setting?

    python bench/live_vs_replay.py [--reps 3] [--case cores|default-first] [--record]

`cores` (default): the bundled LeNet-5 (8,000 samples, local Spark) over a 2-point grid
(batch 128 and 256, learning rate 0.05) × 4 epochs, with one system parameter, cores 1 or 2,
cores=1 the default. The job is held to its cores (`pinCores`), so the two settings differ by
more than this machine's run-to-run noise. The script records a trace of the grid
(bench/traces/cores-lenet5.csv.gz, once, or again with --record), then runs cold PipeTune
live REPS times and replays the same job (same config, seed, switching rule) over the trace,
and compares each trial's probes and chosen setting.

`default-first`: no new runs; reads the live cold PipeTune runs `bench/compare.py` left
(bench/results/compare-runs/default-first: cores 2/1 × memory 2g/1g, recorded before jobs
were pinned to their cores, when every setting was within noise of the others) and replays
them over bench/traces/compare-lenet5.csv.gz.

The replay's choice is what the policy makes of the trace's numbers, the live one what it makes
of its own measurements. Where settings differ by less than run-to-run noise the two may
disagree for that reason alone, so the probe times are shown beside the choices.
Results go to bench/results/live-vs-replay-<case>.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.config import load_config  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay import Trace  # noqa: E402
from pipetune.replay.runner import replay_job  # noqa: E402

OUT = ROOT / "bench" / "results"
TRACES = ROOT / "bench" / "traces"
CORES_TRACE = TRACES / "cores-lenet5.csv.gz"


def label(setting: dict[str, str] | None) -> str:
    return SystemSetting.of(setting or {}).label()


def cores_project() -> Path:
    """A project dir with the bundled app (absolute script path) and the `cores` config."""
    root = OUT / "live-vs-replay-runs" / "cores"
    (root / "bigdl" / "config").mkdir(parents=True, exist_ok=True)
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    app["extras"] = {k: v for k, v in app["extras"].items() if k != "dataPath"}
    (root / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(app, indent=1))
    conf = {
        "bigdlConf": "bigdl/config/lenet5.json",
        "systemParameters": {"cores": ["1", "2"], "memory": ["2g"]},
        "hyperParameters": {
            "batch_size": [128, 256],
            "learning_rate": [0.05],
            "learning_rate_decay": [0.0],
        },
        "search": {"sampler": "grid", "trials": 2, "epochs": 4, "seed": 0},
        "metrics": {"store": "sqlite", "path": "runs/metrics.sqlite"},
        "clustering": {"path": "model.json"},
    }
    (root / "pipetune.conf").write_text(json.dumps(conf, indent=1))
    return root


def pipetune(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pipetune", *args], cwd=root, check=True, stdout=subprocess.DEVNULL
    )


def compare(project: Path, trace: Trace, case: str, runs: list[Path]) -> list[str]:
    config = load_config(project / "pipetune.conf")
    if case == "default-first":
        # those live runs were made with switch "always", before it was the default
        config = dataclasses.replace(
            config, probing=dataclasses.replace(config.probing, switch="always")
        )
    replayed = replay_job(trace, "lenet5", config, "pipetune", config.search.seed).summary
    by_config = {json.dumps(t["hyperparameters"], sort_keys=True): t for t in replayed["trials"]}
    lines = [
        f"# Live PipeTune against a replay of the same job: case `{case}`",
        "",
        "Made by `python bench/live_vs_replay.py --case " + case + "`. Probe epoch times in s "
        "(the default's first), live and in the replay of the trace with the same config, "
        "seed and switching rule.",
        "",
        "| run | batch | live probes | live chosen | replay probes | replay chosen | same |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    same = total = 0
    for path in runs:
        summary = json.loads(path.read_text())
        if summary["mode"] != "pipetune":
            continue
        for trial in summary["trials"]:
            if trial["system"]["source"] != "probed":
                continue  # recognised trials made no comparison
            twin = by_config[json.dumps(trial["hyperparameters"], sort_keys=True)]
            live = ", ".join(f"{p['epoch_s']:.1f}" for p in trial["system"]["probes"])
            rep = ", ".join(f"{p['epoch_s']:.1f}" for p in twin["system"]["probes"])
            agree = trial["system"]["chosen"] == twin["system"]["chosen"]
            same += agree
            total += 1
            lines.append(
                f"| {path.parent.name} | {trial['hyperparameters']['batch_size']} | {live} "
                f"| {label(trial['system']['chosen'])} | {rep} "
                f"| {label(twin['system']['chosen'])} | {'yes' if agree else 'no'} |"
            )
    lines += ["", f"Same choice in {same} of {total} probed trials."]
    return lines


def trace_lines(trace: Trace) -> list[str]:
    """Per configuration and setting: start-up and epoch times, as the trace holds them."""
    lines = ["", "The trace (start-up, then epochs 1-4, in s):", ""]
    for config in trace.configs("lenet5"):
        for setting in trace.settings("lenet5", config):
            epochs = trace.epochs("lenet5", config, setting)
            startup: Any = trace.startup_s("lenet5", config, setting)
            times = ", ".join(f"{r.duration_s:.1f}" for r in epochs)
            lines.append(f"- `{config}` at {setting}: {startup:.1f}; {times}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("cores", "default-first"), default="cores")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="record the cores trace again")
    args = parser.parse_args()
    if args.case == "default-first":
        project = OUT / "compare-runs" / "default-first"
        trace = Trace.load(TRACES / "compare-lenet5.csv.gz")
        runs = sorted(project.glob("runs/*/summary.json"))
        lines = compare(project, trace, args.case, runs)
    else:
        project = cores_project()
        if args.record or not CORES_TRACE.exists():
            CORES_TRACE.unlink(missing_ok=True)
            pipetune(project, "trace", "record", "--out", str(CORES_TRACE))
        shutil.rmtree(project / "runs", ignore_errors=True)
        for rep in range(args.reps):
            print(f"live run {rep + 1}/{args.reps}", flush=True)
            pipetune(project, "--config", "pipetune.conf", "--no-recognition", "--quiet")
        trace = Trace.load(CORES_TRACE)
        runs = sorted(project.glob("runs/*/summary.json"))
        lines = compare(project, trace, args.case, runs) + trace_lines(trace)
    (OUT / f"live-vs-replay-{args.case}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
