"""Where the best setting differs between the bundled workloads, from their recorded trace.

    python bench/workloads.py [TRACE]   # default bench/traces/workloads.csv.gz

Per workload and configuration of the trace: each setting's whole 4-epoch trial (start-up
included, as the oracle costs it: `replay.oracle.trial_cost`), the best setting by duration
and by energy (probing's own `select_best`, the default winning ties), and the steady speed-up
of 2 cores over 1 (epochs 2..4, memory 2g). Written to bench/results/workloads.md.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.probing.objective import Objective  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay.oracle import best_setting, trial_cost  # noqa: E402
from pipetune.replay.trace import Trace  # noqa: E402

TRACE = ROOT / "bench" / "traces" / "workloads.csv.gz"
OUT = ROOT / "bench" / "results" / "workloads.md"
DEFAULT = SystemSetting.of({"cores": "2", "memory": "2g"})
BY = {"duration": Objective({"duration": 1.0}), "energy": Objective({"energy": 1.0})}


def steady_s(trace: Trace, workload: str, config: str, setting: str) -> float:
    return statistics.fmean(r.duration_s for r in trace.epochs(workload, config, setting)[1:])


def rows(trace: Trace) -> list[str]:
    out = []
    for workload in trace.workloads():
        for config in trace.configs(workload):
            epochs = len(trace.epochs(workload, config, DEFAULT.label()))
            labels = sorted(trace.settings(workload, config), key=lambda s: s != DEFAULT.label())
            costs = {s: trial_cost(trace, workload, config, s, epochs) for s in labels}
            best = {
                name: best_setting(trace, workload, config, epochs, objective, DEFAULT).label()
                for name, objective in BY.items()
            }
            speedup = steady_s(trace, workload, config, "cores=1,memory=2g") / steady_s(
                trace, workload, config, "cores=2,memory=2g"
            )
            cells = " | ".join(
                f"{c.epoch_s:.1f} s, {c.energy_j:.0f} J" for c in (costs[s] for s in labels)
            )
            out.append(
                f"| {workload} | `{config}` | {cells} | {best['duration']} | {best['energy']} "
                f"| {speedup:.2f}× |"
            )
    return out


def main(path: Path) -> None:
    trace = Trace.load(path)
    first = trace.workloads()[0]
    config = trace.configs(first)[0]
    labels = sorted(trace.settings(first, config), key=lambda s: s != DEFAULT.label())
    lines = [
        f"# Where the best setting differs: {path.name} (bench/workloads.py)",
        "",
        "Whole trials (start-up and every epoch, energy the labelled CPU-time estimate) per "
        "setting; the best by each objective; the steady speed-up of 2 cores over 1 (mean of "
        "epochs 2..4 at memory 2g).",
        "",
        f"| workload | configuration | {' | '.join(labels)} | best by time | best by energy "
        "| 2 cores' speed-up |",
        "| --- | --- | " + " | ".join("---" for _ in labels) + " | --- | --- | --- |",
        *rows(trace),
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else TRACE)
