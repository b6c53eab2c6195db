"""Start-up of a fresh segment, by phase, with and without the class-data-sharing archive.

    python bench/startup.py [--reps 4]

Each repetition runs, one after the other, the same one-trial, one-epoch v1 job (the bundled
LeNet-5, 8,000 samples, local[2]) with `classDataSharing` off and on (the archive made by one
run before the repetitions, as a real first run makes it). Start-up is the segment's time
outside its epoch (summary.json `time.startup_s`), split into its phases
(`time.startup_phases_s`). Medians; ratios per repetition. Results:
bench/results/startup.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
ARMS = ("off", "on")
PHASES = ("launch", "imports", "spark context", "data", "model", "save", "teardown")


def project(root: Path, sharing: bool) -> Path:
    (root / "bigdl" / "config").mkdir(parents=True)
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    app["extras"] = {k: v for k, v in app["extras"].items() if k != "dataPath"}
    app["classDataSharing"] = sharing
    (root / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(app))
    conf = {
        "bigdlConf": "bigdl/config/lenet5.json",
        "systemParameters": {"cores": ["2"]},
        "hyperParameters": {"batch_size": [128], "learning_rate": [0.05]},
        "search": {"sampler": "grid", "trials": 1, "epochs": 1, "seed": 0},
        "metrics": {"store": "sqlite", "path": "runs/metrics.sqlite"},
        "clustering": {"enabled": False},
    }
    (root / "pipetune.conf").write_text(json.dumps(conf))
    return root


def run(root: Path) -> dict[str, Any]:
    before = set(root.glob("runs/*/summary.json"))
    subprocess.run(
        [sys.executable, "-m", "pipetune", "--config", "pipetune.conf", "--mode", "v1", "--quiet"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (path,) = set(root.glob("runs/*/summary.json")) - before
    time_ = json.loads(path.read_text())["trials"][0]["time"]
    return {"startup_s": time_["startup_s"], **time_["startup_phases_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pipetune-startup-"))
    try:
        roots = {arm: project(work / arm, arm == "on") for arm in ARMS}
        run(roots["on"])  # makes the archive if this machine has none yet (not counted)
        rows: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
        for rep in range(args.reps):
            for arm in ARMS:
                rows[arm].append(run(roots[arm]))
                print(f"rep {rep} {arm}: {rows[arm][-1]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, args.reps)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.md").write_text(text)
    print(text)


def report(rows: dict[str, list[dict[str, Any]]], reps: int) -> str:
    def med(arm: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows[arm])

    ratios = [on["startup_s"] / off["startup_s"] for off, on in zip(*rows.values(), strict=True)]
    lines = [
        "# Start-up of a fresh segment, with and without class-data sharing",
        "",
        f"`python bench/startup.py --reps {reps}`: a one-trial, one-epoch v1 job (LeNet-5, 8,000 "
        "samples, local[2]), `classDataSharing` off and on, interleaved. Medians in s.",
        "",
        "| phase | off | on |",
        "| --- | --- | --- |",
    ]
    for key in ("startup_s", *PHASES):
        lines.append(f"| {key} | {med('off', key):.2f} | {med('on', key):.2f} |")
    lines += [
        "",
        f"Start-up on / off per repetition: median {statistics.median(ratios):.2f} "
        f"[{min(ratios):.2f}–{max(ratios):.2f}].",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
