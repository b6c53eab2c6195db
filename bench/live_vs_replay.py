"""Live runs against a replay of the same workload: do they choose the same system setting?

    python bench/live_vs_replay.py [CASE]

Reads the live cold PipeTune runs `bench/compare.py` left (bench/results/compare-runs/CASE,
default `default-first`), replays the same job (same config, seed, switching rule) over
bench/traces/compare-lenet5.csv.gz, and compares each trial's probes and chosen setting. The
replay's choice is what the policy makes of the trace's numbers; the live one of its own
measurements. Where settings differ by less than run-to-run noise the two may disagree for
that reason alone, so the probe times are shown beside the choices.
Results go to bench/results/live-vs-replay.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.config import load_config  # noqa: E402
from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay import Trace  # noqa: E402
from pipetune.replay.runner import replay_job  # noqa: E402


def label(setting: dict[str, str] | None) -> str:
    return SystemSetting.of(setting or {}).label()


def main() -> None:
    case = sys.argv[1] if len(sys.argv) > 1 else "default-first"
    project = ROOT / "bench" / "results" / "compare-runs" / case
    config = load_config(project / "pipetune.conf")
    # the live runs were made with continuation on and switch "always" (compare.py's arms)
    probing = dataclasses.replace(config.probing, switch="always")
    config = dataclasses.replace(config, probing=probing)
    trace = Trace.load(ROOT / "bench" / "traces" / "compare-lenet5.csv.gz")
    replayed = replay_job(trace, "lenet5", config, "pipetune", config.search.seed).summary
    by_config = {json.dumps(t["hyperparameters"], sort_keys=True): t for t in replayed["trials"]}
    lines = [
        "# Live PipeTune against a replay of the same job (bench/live_vs_replay.py)",
        "",
        f"Case {case}; replay of `bench/traces/compare-lenet5.csv.gz` with the same config and "
        "seed. Probe epoch times in s (default first).",
        "",
        "| run | batch | live probes | live chosen | replay probes | replay chosen | same |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    same = total = 0
    for path in sorted(project.glob("runs/*/summary.json")):
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
    (ROOT / "bench" / "results" / "live-vs-replay.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
