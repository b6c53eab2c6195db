"""PipeTune against its baselines on real runs, interleaved, several repetitions.

    python bench/compare.py [--reps 3] [--case default-first|cores1-first] [--engine torch]

On one workload (the bundled LeNet-5, 8,000 samples, local Spark), with the same
hyperparameter configurations (a 2-point grid: batch 128 and 256) and the same budget
(2 trials × 4 epochs), each repetition runs, one after the other:

    v1 · v2 · pipetune (cold, no model) · pipetune (cold, whole-epoch probes) ·
    pipetune (cold, restarts only) · pipetune (recurring: a model trained by an earlier run) ·
    oracle

so that drift of this shared machine hits all alike. `pipetune-cold` probes live settings
over windows of iterations (the default, `probing.window` "iterations"); `pipetune-epoch`
probes them for whole epochs, as before window probes. `pipetune-restart` is PipeTune with
every change of setting made by a restart (`probing.live` false, every candidate probed): how
it worked before probing in place. The oracle runs each trial at the setting a trace recorded
beforehand says is cheapest for its configuration (`pipetune trace record` over the same grid,
recorded at the first run of a case and kept in bench/traces/compare-<case>.csv.gz). Results
go to bench/results/compare-<case>.md and .csv (and -runs.csv, one row per run), drawn in
compare-<case>.png.

Cases: `default-first` uses systemParameters cores ["2", "1"], memory ["2g", "1g"] (the
shipped defaults: the default is the best setting); `cores1-first` makes cores=1 the default
with cores the only system parameter (the default is poor, the better one is reachable live);
`cores1-first-memory` adds memory ["2g", "1g"], a restart parameter.

`--engine torch` runs the same cases on the PyTorch LeNet-5 (bigdl/config/lenet5_torch.json,
one plain process, the same data), without memory: a Python process has no heap to size
(pipetune/engines/torch.py). Its files are named after the case and the engine
(compare-<case>-torch.md, bench/traces/compare-<case>-torch.csv.gz).
"""

from __future__ import annotations

import argparse
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

from pipetune.records import SystemSetting  # noqa: E402
from pipetune.replay import Trace, canonical_config  # noqa: E402
from pipetune.replay.oracle import trial_cost  # noqa: E402

WORK = ROOT / "bench" / "results" / "compare-runs"
OUT = ROOT / "bench" / "results"
TRACES = ROOT / "bench" / "traces"
CASES = {
    "default-first": {"cores": ["2", "1"], "memory": ["2g", "1g"]},
    "cores1-first": {"cores": ["1", "2"]},
    "cores1-first-memory": {"cores": ["1", "2"], "memory": ["2g", "1g"]},
}
STRATEGIES = (
    "v1",
    "v2",
    "pipetune-cold",
    "pipetune-epoch",
    "pipetune-restart",
    "pipetune-recurring",
    "oracle",
)
DEFAULT_STRATEGIES = STRATEGIES
EPOCHS = 4
# the bundled LeNet-5 on each engine: its app config, and what the report calls it
ENGINES = {
    "bigdl": ("lenet5.json", "BigDL, 8,000 augmented digits, local Spark"),
    "torch": ("lenet5_torch.json", "PyTorch, 8,000 augmented digits, one Python process"),
}


def bench_name(case: str, engine: str) -> str:
    """What a case's files are named after: the case, and the engine unless it is BigDL."""
    return case if engine == "bigdl" else f"{case}-{engine}"


def case_and_engine(name: str) -> tuple[str, str]:
    """The case and the engine a bench name (`bench_name`) stands for."""
    for engine in ENGINES:
        if name.endswith(f"-{engine}") and name.removesuffix(f"-{engine}") in CASES:
            return name.removesuffix(f"-{engine}"), engine
    return name, "bigdl"


def system_parameters(name: str) -> dict[str, list[str]]:
    """The case's system parameters, less those the engine does not take (torch: memory)."""
    case, engine = case_and_engine(name)
    return {k: v for k, v in CASES[case].items() if engine == "bigdl" or k != "memory"}


def project(bench: str) -> Path:
    """A project dir with the bundled app (absolute script paths) and one conf per variant."""
    root = WORK / bench
    shutil.rmtree(root, ignore_errors=True)
    (root / "bigdl" / "config").mkdir(parents=True)
    app_file = ENGINES[case_and_engine(bench)[1]][0]
    app = json.loads((ROOT / "bigdl" / "config" / app_file).read_text())
    for key in ("conf", "launcher"):  # relative to the repository
        if key in app:
            app[key] = str(ROOT / app[key])
    app["extras"] = {k: v for k, v in app["extras"].items() if k != "dataPath"}
    (root / "bigdl" / "config" / "lenet5.json").write_text(json.dumps(app, indent=1))
    # restart.conf: every change of setting is a new process (no live switching), as before
    # probing in place: what live switching buys, measured side by side
    # epoch.conf: live probes of whole epochs, the way before window probes
    variants = {
        "pipetune.conf": {},
        "epoch.conf": {"window": "epoch"},
        "restart.conf": {"live": False, "restart_probes": "always", "window": "epoch"},
    }
    for name, probing in variants.items():
        conf = {
            "bigdlConf": "bigdl/config/lenet5.json",
            "systemParameters": system_parameters(bench),
            "hyperParameters": {
                "batch_size": [128, 256],
                "learning_rate": [0.05],
                "learning_rate_decay": [0.0],
            },
            "search": {"sampler": "grid", "trials": 2, "epochs": EPOCHS, "seed": 0},
            "probing": probing,
            "metrics": {"store": "sqlite", "path": "runs/metrics.sqlite"},
            "clustering": {"path": "model.json"},
        }
        (root / name).write_text(json.dumps(conf, indent=1))
    return root


def pipetune(root: Path, *args: str) -> dict[str, Any]:
    """One run through the real CLI; its summary.json, plus the wall time seen from outside."""
    before = set(root.glob("runs/*/summary.json"))
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pipetune", "--quiet", *args],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.monotonic() - t0
    (path,) = set(root.glob("runs/*/summary.json")) - before
    summary = json.loads(path.read_text())
    summary["bench_wall_s"] = wall
    return summary


def run_strategy(root: Path, strategy: str, trace: Path) -> dict[str, Any]:
    if strategy in ("v1", "v2"):
        return pipetune(root, "--config", "pipetune.conf", "--mode", strategy)
    if strategy == "pipetune-cold":
        return pipetune(root, "--config", "pipetune.conf", "--no-recognition")
    if strategy == "pipetune-epoch":
        return pipetune(root, "--config", "epoch.conf", "--no-recognition")
    if strategy == "pipetune-restart":
        return pipetune(root, "--config", "restart.conf", "--no-recognition")
    if strategy == "pipetune-recurring":
        shutil.copy(root / "model-trained.json", root / "model.json")  # same model every rep
        return pipetune(root, "--config", "pipetune.conf")
    return pipetune(
        root, "--config", "pipetune.conf", "--mode", "oracle", "--oracle-trace", str(trace)
    )


def row(rep: int, strategy: str, summary: dict[str, Any], trace: Trace) -> dict[str, Any]:
    trials = summary["trials"]
    best = summary["best"]
    train_s = None
    if best and best["system"]:
        key = canonical_config(best["hyperparameters"])
        label = SystemSetting.of(best["system"]).label()
        train_s = trial_cost(trace, trace.workloads()[0], key, label, EPOCHS).epoch_s
    total = summary["totals"]["time_s"]
    startup = sum(t["time"]["startup_s"] for t in trials)
    segments = sum(t["segments"] for t in trials)
    probed = [t for t in trials if t["probe_epochs"] or t.get("probe_windows")]
    epochs = sum(t["epochs"] for t in trials)
    windows = [p["window"] for t in trials for p in t["system"]["probes"] if p.get("window")]
    shares = [
        (w["iterations"] + w["warmup_iterations"]) / w["epoch_iterations"]
        for w in windows
        if w.get("epoch_iterations")
    ]
    return {
        "rep": rep,
        "strategy": strategy,
        "tuning_s": total,
        "bench_wall_s": round(summary["bench_wall_s"], 1),
        "train_s": train_s,
        "energy_j": summary["totals"]["energy"]["joules"],
        "energy_source": summary["totals"]["energy"]["source"],
        "best_accuracy": best["accuracy"] if best else None,
        "chosen": ";".join(SystemSetting.of(t["system"]["chosen"] or {}).label() for t in trials),
        "sources": ";".join(t["system"]["source"] for t in trials),
        "probe_epochs": sum(t["probe_epochs"] for t in trials),
        "probe_windows": len(windows),
        "window_share_max": round(max(shares), 3) if shares else None,
        "probe_s": round(sum(t["time"]["probe_s"] or 0 for t in trials), 1),
        "segments": segments,
        "processes_per_probed_trial": statistics.median([t["processes"] for t in probed])
        if probed
        else None,
        "startup_s": round(startup, 1),
        "startup_share": round(startup / total, 3) if total else None,
        "tuner_cpu_s": summary.get("overhead", {}).get("tuner_cpu_s"),
        "tuner_cpu_per_epoch_s": round(summary["overhead"]["tuner_cpu_s"] / epochs, 3)
        if summary.get("overhead") and epochs
        else None,
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_rep_v1 = {r["rep"]: r for r in rows if r["strategy"] == "v1"}
    by_rep_oracle = {r["rep"]: r for r in rows if r["strategy"] == "oracle"}
    out = []
    for strategy in STRATEGIES:
        group = [r for r in rows if r["strategy"] == strategy]
        if not group:
            continue
        entry: dict[str, Any] = {"strategy": strategy, "reps": len(group)}
        for metric in (
            "tuning_s",
            "train_s",
            "energy_j",
            "best_accuracy",
            "startup_share",
            "processes_per_probed_trial",
        ):
            values = [r[metric] for r in group if r[metric] is not None]
            entry[metric] = statistics.median(values) if values else None
        for metric in ("tuning_s", "train_s", "energy_j"):
            ratios = [
                r[metric] / by_rep_v1[r["rep"]][metric]
                for r in group
                if r["rep"] in by_rep_v1 and r[metric] and by_rep_v1[r["rep"]][metric]
            ]
            entry[f"{metric}_vs_v1"] = statistics.median(ratios) if ratios else None
            entry[f"{metric}_vs_v1_min"] = min(ratios, default=None)
            entry[f"{metric}_vs_v1_max"] = max(ratios, default=None)
        gaps = [
            r["best_accuracy"] - by_rep_v1[r["rep"]]["best_accuracy"]
            for r in group
            if r["rep"] in by_rep_v1 and r["best_accuracy"] is not None
        ]
        entry["accuracy_vs_v1"] = statistics.median(gaps) if gaps else None
        efficiency = [
            by_rep_oracle[r["rep"]]["tuning_s"] / r["tuning_s"]
            for r in group
            if r["rep"] in by_rep_oracle and r["tuning_s"]
        ]
        entry["oracle_efficiency"] = statistics.median(efficiency) if efficiency else None
        out.append(entry)
    return out


def markdown(case: str, summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    def ratio(e: dict[str, Any], metric: str) -> str:
        mid = e[f"{metric}_vs_v1"]
        if mid is None:
            return "–"
        return f"{mid:.2f} [{e[f'{metric}_vs_v1_min']:.2f}–{e[f'{metric}_vs_v1_max']:.2f}]"

    def num(v: float | None, fmt: str = ",.0f") -> str:
        return "–" if v is None else format(v, fmt)

    sources = sorted({r["energy_source"] for r in rows})
    lines = [
        f"# PipeTune against its baselines, real runs ({case})",
        "",
        f"LeNet-5 ({ENGINES[case_and_engine(case)[1]][1]}), 2 trials × {EPOCHS} epochs, "
        f"grid over batch 128/256; system parameters {json.dumps(system_parameters(case))} "
        f"(first = default). {max(r['rep'] for r in rows) + 1} repetitions, strategies "
        "interleaved. Medians; ratios to v1 per repetition: median [min–max]. "
        f"Energy: {', '.join(sources)}.",
        "",
        "| strategy | tuning s | vs v1 | training s | vs v1 | energy J | vs v1 | best acc. "
        "| Δacc vs v1 | oracle eff. | start-up share | processes / probed trial |",
        "|" + " --- |" * 12,
    ]
    for e in summary:
        lines.append(
            f"| {e['strategy']} | {num(e['tuning_s'])} | {ratio(e, 'tuning_s')} "
            f"| {num(e['train_s'])} | {ratio(e, 'train_s')} | {num(e['energy_j'])} "
            f"| {ratio(e, 'energy_j')} | {num(e['best_accuracy'], '.3f')} "
            f"| {num(e['accuracy_vs_v1'], '+.3f')} | {num(e['oracle_efficiency'], '.2f')} "
            f"| {num(e['startup_share'], '.0%')} | {num(e['processes_per_probed_trial'], 'g')} |"
        )
    lines += [
        "",
        "tuning s: every segment of both trials (probes and start-ups included). training s: the "
        "best configuration trained from scratch at its chosen setting, from the recorded trace. "
        "oracle eff.: oracle tuning time / this strategy's. Per run: compare-"
        + case
        + "-runs.csv.",
    ]
    return "\n".join(lines) + "\n"


REPLAYED = {"v1": "v1", "pipetune": "pipetune-cold", "oracle": "oracle"}


def replay_parity(root: Path, trace: Trace, summary: list[dict[str, Any]]) -> str:
    """The same job replayed over the case's trace (noiseless), against the live medians."""
    from pipetune.config import load_config
    from pipetune.replay.offline import run_offline
    from pipetune.replay.offline import summarise as summarise_replay

    config = load_config(root / "pipetune.conf")
    outcomes = run_offline(trace, config, [0], strategies=tuple(REPLAYED), scratch=root)
    replayed = {r["strategy"]: r["tuning_s"] for r in summarise_replay(outcomes)}
    live = {e["strategy"]: e["tuning_s"] for e in summary}
    lines = [
        "",
        "Replayed over the trace (`pipetune replay offline`, no noise) against the live medians:",
        "",
        "| strategy | live tuning s | replayed tuning s | live / replayed |",
        "| --- | --- | --- | --- |",
    ]
    for strategy, live_name in REPLAYED.items():
        if live_name in live and strategy in replayed and live[live_name]:
            lines.append(
                f"| {live_name} | {live[live_name]:.0f} | {replayed[strategy]:.0f} "
                f"| {live[live_name] / replayed[strategy]:.2f} |"
            )
    return "\n".join(lines) + "\n"


def plot(case: str, summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Path:
    """compare-<case>.png beside the table: tuning time and energy as ratios to v1 (median,
    min–max over repetitions) and best accuracy, per strategy."""
    from pipetune.report.bench_plots import strategies_figure, write_figure

    sources = sorted({str(r["energy_source"]) for r in rows})
    title = f"PipeTune against its baselines, real runs ({case}): ratios to v1 per repetition"
    figure = strategies_figure(summary, title, sources[0] if len(sources) == 1 else "mixed")
    return write_figure(figure, OUT / f"compare-{case}.png")


def write_runs(case: str, rows: list[dict[str, Any]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"compare-{case}-runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def choices(case: str, rows: list[dict[str, Any]]) -> str:
    """Window against whole-epoch probes: the setting each chose, trial by trial."""
    by = {(r["rep"], r["strategy"]): str(r["chosen"] or "").split(";") for r in rows}
    pairs = [
        (a, b)
        for (rep, strategy), window in by.items()
        if strategy == "pipetune-cold" and (rep, "pipetune-epoch") in by
        for a, b in zip(window, by[(rep, "pipetune-epoch")], strict=False)
    ]
    if not pairs:
        return ""
    same = sum(a == b for a, b in pairs)
    shares = [r["window_share_max"] for r in rows if r.get("window_share_max")]
    by_batch = ", ".join(f"{share:.2f} at batch {b}" for b, share in window_shares(case).items())
    return (
        f"\nWindow probes (pipetune-cold) chose the same setting as whole-epoch probes "
        f"(pipetune-epoch) in {same} of {len(pairs)} trials. Largest window, warm-up "
        f"included: {max(shares, default=0):.2f} of an epoch ({by_batch or 'per batch: –'}).\n"
    )


def window_shares(case: str) -> dict[int, float]:
    """The largest window (warm-up included) as a share of an epoch, per batch size, over the
    run directories this case's runs left."""
    out: dict[int, float] = {}
    for path in sorted((WORK / case / "runs").glob("*/summary.json")):
        for trial in json.loads(path.read_text())["trials"]:
            batch = trial["hyperparameters"].get("batch_size")
            for p in trial["system"]["probes"]:
                w = p.get("window")
                if w and w.get("epoch_iterations") and isinstance(batch, int):
                    share = (w["iterations"] + w["warmup_iterations"]) / w["epoch_iterations"]
                    out[batch] = max(out.get(batch, 0.0), share)
    return dict(sorted(out.items()))


def report_only(case: str) -> None:
    with open(OUT / f"compare-{case}-runs.csv", newline="") as f:
        rows = [{k: _value(v) for k, v in r.items()} for r in csv.DictReader(f)]
    root = WORK / case
    root.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    trace = Trace.load(TRACES / f"compare-{case}.csv.gz")
    if not (root / "pipetune.conf").exists():
        project(case)
    text = markdown(case, summary, rows) + choices(case, rows) + replay_parity(root, trace, summary)
    (OUT / f"compare-{case}.md").write_text(text)
    plot(case, summary, rows)
    print(text)


def _value(text: str) -> Any:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--case", choices=sorted(CASES), default="default-first")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="bigdl")
    parser.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help=f"comma-separated, in order, from {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the tables again from the last run's -runs.csv (no runs)",
    )
    args = parser.parse_args()
    if args.report_only:
        report_only(bench_name(args.case, args.engine))
        return
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = set(strategies) - set(STRATEGIES)
    if unknown or "v1" not in strategies:
        parser.error(f"strategies: from {', '.join(STRATEGIES)}, v1 included (the baseline)")
    name = bench_name(args.case, args.engine)
    root = project(name)
    # v3: recorded with the job held to its cores, with the measured cost of a live switch
    trace_path = TRACES / f"compare-{name}.csv.gz"
    if not trace_path.exists():  # the oracle's knowledge: every setting, both configurations
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipetune",
                "trace",
                "record",
                "--config",
                "pipetune.conf",
                "--configs",
                "2",
                "--out",
                str(trace_path),
            ],
            cwd=root,
            check=True,
        )
    trace = Trace.load(trace_path)
    if "pipetune-recurring" in strategies:
        # The recurring case needs a model that has seen this job: one earlier probing run.
        (root / "model.json").unlink(missing_ok=True)
        pipetune(root, "--config", "pipetune.conf")
        shutil.copy(root / "model.json", root / "model-trained.json")
    rows = []
    for rep in range(args.reps):
        for strategy in strategies:
            summary = run_strategy(root, strategy, trace_path)
            rows.append(row(rep, strategy, summary, trace))
            r = rows[-1]
            print(
                f"rep {rep} {strategy:19} tuning {r['tuning_s']:7.1f} s  energy "
                f"{r['energy_j']:8.0f} J  acc {r['best_accuracy']}  chosen {r['chosen']}",
                flush=True,
            )
            write_runs(name, rows)  # after every run: an interrupted bench keeps them
    summary = summarise(rows)
    with open(OUT / f"compare-{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    text = markdown(name, summary, rows) + choices(name, rows)
    text += replay_parity(root, trace, summary)
    (OUT / f"compare-{name}.md").write_text(text)
    plot(name, summary, rows)
    print(text)


if __name__ == "__main__":
    main()
