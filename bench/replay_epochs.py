"""Replays of a long recorded trace at 4, 10 and 20 epochs per trial: where probing pays.

    python bench/replay_epochs.py [--record] [--seeds 5]

The trace (bench/traces/cores-lenet5-20.csv.gz): the bundled LeNet-5 (8,000 samples, local
Spark, the job held to its cores) over the 2-point grid of bench/compare.py (batch 128 and
256, learning rate 0.05) × cores 1 and 2 × 20 epochs, recorded once (or again with
--record) by `pipetune trace record`. It records the cost of a live switch (`switch_s`) and
cores as live (trace v3).

Each replay runs v1, v2, pipetune and oracle on 2 trials of E epochs (E = 4, 10, 20; the
first E epochs of each recorded group), with cores=1 the default and again with cores=2 the
default, through the live tuner over the trace (`pipetune replay offline`). Tuning time and
oracle efficiency (oracle tuning time / pipetune's) go to bench/results/replay-epochs.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.config import load_config  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay import Trace  # noqa: E402
from pipetune.replay.offline import run_offline, summarise  # noqa: E402

TRACE = ROOT / "bench" / "traces" / "cores-lenet5-20.csv.gz"
OUT = ROOT / "bench" / "results" / "replay-epochs.md"
EPOCHS = (4, 10, 20)
DEFAULTS = ("1", "2")  # the default cores: the poor setting first, then the best one


def write_project(root: Path, epochs: int, default: str = "1") -> Path:
    (root / "bigdl" / "config").mkdir(parents=True, exist_ok=True)
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    app["extras"] = {k: v for k, v in app["extras"].items() if k != "dataPath"}
    (root / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(app))
    conf = {
        "bigdlConf": "bigdl/config/lenet5.json",
        "systemParameters": {"cores": sorted(DEFAULTS, key=lambda c: c != default)},
        "hyperParameters": {
            "batch_size": [128, 256],
            "learning_rate": [0.05],
            "learning_rate_decay": [0.0],
        },
        "search": {"sampler": "grid", "trials": 2, "epochs": epochs, "seed": 0},
        "metrics": {"store": "sqlite", "path": "runs/metrics.sqlite"},
    }
    path = root / f"pipetune-{epochs}-cores{default}.conf"
    path.write_text(json.dumps(conf))
    return path


def record(root: Path) -> None:
    conf = write_project(root, max(EPOCHS))
    subprocess.run(
        [
            *(sys.executable, "-m", "pipetune", "trace", "record", "--config", str(conf)),
            *("--configs", "2", "--out", str(TRACE)),
        ],
        cwd=root,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record the trace again")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.record or not TRACE.exists():
            TRACE.unlink(missing_ok=True)
            record(root)
        trace = Trace.load(TRACE)
        lines = [
            "# Replays of a 20-epoch trace at 4, 10 and 20 epochs per trial",
            "",
            f"`python bench/replay_epochs.py --seeds {args.seeds}` over "
            f"`{TRACE.relative_to(ROOT)}` (cores 1 or 2, either one the default, live switches "
            "at their recorded cost). Medians over the seeds; ratios to v1 per seed.",
            "",
            "| default | epochs | strategy | tuning s | vs v1 | oracle eff. | chosen |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for default, epochs in ((d, e) for d in DEFAULTS for e in EPOCHS):
            config = load_config(write_project(root, epochs, default))
            outcomes = run_offline(trace, config, range(args.seeds), scratch=root)
            rows = {r["strategy"]: r for r in summarise(outcomes)}
            oracle = rows["oracle"]["tuning_s"]
            for strategy in ("v1", "v2", "pipetune", "oracle"):
                r = rows[strategy]
                chosen = sorted(
                    {
                        SystemSetting.of(o.best_setting or {}).label()
                        for o in outcomes
                        if o.strategy == strategy
                    }
                )
                lines.append(
                    f"| cores={default} | {epochs} | {strategy} | {r['tuning_s']:.0f} "
                    f"| {r['tuning_s_vs_v1']:.2f} "
                    f"| {oracle / r['tuning_s']:.2f} | {', '.join(chosen)} |"
                )
        shutil.rmtree(root / "runs", ignore_errors=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
