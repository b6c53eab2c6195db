"""Offline replays of the recorded traces under both default orders, side by side.

    python bench/replay_cases.py [SEEDS]

For each trace in bench/traces/, each case (the shipped default `cores=2,memory=2g` first, or
`cores=1` first) and each switching rule (`probing.switch`: always, the default, and
when-it-pays), `pipetune replay offline` with SEEDS seeds (default 5), without noise and with the
run-to-run noise measured here (lognormal sigma 0.1 on epoch times). The tables go to
bench/results/replay-cases.md: where the default is the costly setting PipeTune's probes can
pay off, where it is already the cheapest they can only cost.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "replay-cases.md"
SWITCH = ("when-it-pays", "always")
CASES = {
    "default-first (cores 2, memory 2g)": {"cores": ["2", "1"], "memory": ["2g", "1g"]},
    "cores1-first (cores 1, memory 2g)": {"cores": ["1", "2"], "memory": ["2g", "1g"]},
}


def main() -> None:
    seeds = sys.argv[1] if len(sys.argv) > 1 else "5"
    base = json.loads((ROOT / "pipetune.conf").read_text())
    app = json.loads((ROOT / "bigdl" / "config" / "lenet5.json").read_text())
    app["conf"] = str(ROOT / "applications" / "lenet5" / "lenet5.py")
    lines = ["# Offline replays of the recorded traces, both default orders", ""]
    lines.append(f"`python bench/replay_cases.py {seeds}`; see each trace's notes in bench/traces.")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.json").write_text(json.dumps(app))
        base["bigdlConf"] = "app.json"
        for trace in sorted((ROOT / "bench" / "traces").glob("*.csv.gz")):
            for (case, system), switch in itertools.product(CASES.items(), SWITCH):
                conf = Path(tmp) / "pipetune.conf"
                probing = {**base.get("probing", {}), "switch": switch}
                conf.write_text(
                    json.dumps({**base, "systemParameters": system, "probing": probing})
                )
                for noise in ("0", "0.1"):
                    out = Path(tmp) / "out"
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "pipetune",
                            "replay",
                            "offline",
                            str(trace),
                            "--config",
                            str(conf),
                            "--seeds",
                            seeds,
                            "--noise",
                            noise,
                            "--out",
                            str(out),
                        ],
                        check=True,
                        stdout=subprocess.DEVNULL,
                        cwd=tmp,
                    )
                    table = (out / "offline.md").read_text().split("\n", 2)[2]
                    title = f"{trace.name}, {case}, switch {switch}, noise {noise}"
                    lines += ["", f"## {title}", "", table.strip()]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
