"""Online replay over the three-workload trace: 1,000 recurring tuning jobs, three cases.

    python bench/replay_online_workloads.py [--jobs 1000]

`pipetune replay online bench/traces/workloads.csv.gz` (LeNet-5, text CNN, text LSTM; Poisson
arrivals at v1's offered load 0.7 into 4 slots; recognition shared by all jobs and learning
online, profiles with run-to-run noise) under three tuning configs, the shipped
`pipetune.conf` changed only where the case says:

    shipped        cores ["2", "1"], memory ["2g", "1g"], by duration: the default is best
    cores1-first   cores ["1", "2"]: the default is the poor setting
    by-energy      the shipped order, select_by energy: the LSTM's best differs (cores=1)

Each case's table is the CLI's own (bench/results/replay-online-workloads.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "bench" / "traces" / "workloads.csv.gz"
OUT = ROOT / "bench" / "results" / "replay-online-workloads.md"


def cases() -> dict[str, dict]:
    shipped = json.loads((ROOT / "pipetune.conf").read_text())
    cores1 = json.loads(json.dumps(shipped))
    cores1["systemParameters"]["cores"] = ["1", "2"]
    energy = json.loads(json.dumps(shipped))
    energy["probing"]["select_by"] = "energy"
    return {"shipped": shipped, "cores1-first": cores1, "by-energy": energy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    lines = [
        "# Online replay over the three-workload trace (bench/replay_online_workloads.py)",
        "",
        __doc__.split("\n\n", 2)[2].strip(),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, conf in cases().items():
            # beside pipetune.conf: an app config's paths are relative to the project
            path = ROOT / f".replay-online-{name}.conf"
            path.write_text(json.dumps(conf))
            out = Path(tmp) / name
            subprocess.run(
                [
                    *(sys.executable, "-m", "pipetune", "replay", "online", str(TRACE)),
                    *("--config", str(path), "--jobs", str(args.jobs), "--out", str(out)),
                ],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            path.unlink()
            lines += ["", f"## {name}", "", (out / "online.md").read_text().strip()]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
