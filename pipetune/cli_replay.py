"""`pipetune replay offline|online`: tuning strategies re-run over a trace.

pandas, numpy and the replay package are imported inside the commands, so `pipetune --help`
and tuning runs do not pay for them.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipetune.cli_common import config_option, fail, load
from pipetune.errors import PipeTuneError

if TYPE_CHECKING:
    from pipetune.replay.online import Services, StrategyResult


@click.group()
def replay() -> None:
    """Re-run tuning strategies over a recorded trace, offline or as an online cluster.

    \b
    Examples:
      pipetune replay offline bench/traces/lenet5-local2.csv.gz --seeds 5
      pipetune replay online big.parquet --jobs 10000 --slots 4 --load 0.7
    """


def _trace_and_config(trace_path: str, config_path: str) -> tuple[Any, Any]:
    from pipetune.replay import Trace
    from pipetune.replay.runner import check_default_recorded

    trace, config = Trace.load(trace_path), load(config_path)
    check_default_recorded(trace, config)
    return trace, config


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _label(loaded: Any) -> str:
    return "SYNTHETIC trace" if loaded.is_synthetic else "recorded trace"


@replay.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
@config_option
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Replay every job with seeds 0..N-1 (its search and noise).",
)
@click.option(
    "--noise",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Run-to-run noise: lognormal sigma on each replayed epoch's time and energy.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/replay-offline",
    show_default=True,
    help="Directory for offline.md, offline.csv (summary) and offline-runs.csv (per seed).",
)
def offline(trace_path: str, config_path: str, seeds: int, noise: float, out: str) -> None:
    """v1, v2, pipetune and oracle on every workload of TRACE, same seeds and budget.

    \b
    Example:
      pipetune replay offline bench/traces/lenet5-local2.csv.gz --seeds 5
    """
    from pipetune.replay.offline import oracle_violations, run_offline, summarise, table
    from pipetune.replay.runner import reuse_note

    try:
        loaded, config = _trace_and_config(trace_path, config_path)
        click.echo(
            f"{_label(loaded)} {trace_path}: {len(loaded.workloads())} workload(s); "
            f"{config.search.trials} trial(s) × {config.search.epochs} epoch(s) per job, "
            f"seeds 0..{seeds - 1}, noise {noise:g}"
        )
        reuse = reuse_note(loaded, config)
        click.echo(reuse)
        outcomes = run_offline(loaded, config, range(seeds), noise=noise)
    except PipeTuneError as exc:
        fail(f"error: {exc}", exc.exit_code)
    rows = summarise(outcomes)
    text = table(rows)
    violations = oracle_violations(loaded, config, outcomes)
    if not violations:
        check = "oracle check: no trial of any strategy beat its configuration's oracle trial"
    else:
        check = f"oracle check: {len(violations)} trial(s) beat the oracle"
        check += " (noise: expected)" if noise > 0 else " — a bug"
    out_dir = Path(out)
    _write_csv(out_dir / "offline.csv", rows)
    _write_csv(out_dir / "offline-runs.csv", [o.row() for o in outcomes])
    header = (
        f"Offline replay of {trace_path} ({_label(loaded)}), objective "
        f"{config.probing.objective.describe()}, seeds 0..{seeds - 1}, noise {noise:g}. "
        "Medians over seeds; ratios to v1 per seed: median [min–max]."
    )
    (out_dir / "offline.md").write_text(f"{header}\n{reuse}.\n\n{text}\n\n{check}\n")
    _draw_offline(out_dir / "offline.png", rows, trace_path, loaded)
    click.echo(text)
    click.echo(check)
    for v in violations[:10]:
        click.echo(f"  {v}")
    click.echo(
        f"results: {out_dir / 'offline.md'}, {out_dir / 'offline.csv'}, {out_dir / 'offline.png'}"
    )
    if violations and noise == 0:
        fail("error: the oracle was beaten on a noiseless replay", 1)


@replay.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
@config_option
@click.option(
    "--jobs",
    "count",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="How many jobs arrive.",
)
@click.option(
    "--slots",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="How many jobs run at once; the others queue.",
)
@click.option(
    "--load",
    type=click.FloatRange(min=0.0, min_open=True),
    default=0.7,
    show_default=True,
    help="Offered load of v1 (λ·E[S_v1]/slots); sets the arrival rate.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Jobs per hour (overrides --load).",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Distinct jobs per workload (search seeds 0..N-1); every arrival is one of them.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Arrivals and noise.")
@click.option(
    "--noise",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Run-to-run noise: lognormal sigma on each replayed epoch's time and energy.",
)
@click.option(
    "--profile-noise",
    type=click.FloatRange(min=0.0),
    default=0.2,
    show_default=True,
    help="Run-to-run noise of the replayed profiles (lognormal sigma per counter).",
)
@click.option("--allow-overload", is_flag=True, help="Warn on a load >= 1 instead of refusing.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/replay-online",
    show_default=True,
    help="Directory for online.md and online.csv.",
)
def online(
    trace_path: str,
    config_path: str,
    count: int,
    slots: int,
    load: float,
    rate: float | None,
    seeds: int,
    seed: int,
    noise: float,
    profile_noise: float,
    allow_overload: bool,
    out: str,
) -> None:
    """Poisson arrivals of recurring tuning jobs into SLOTS slots, per strategy.

    \b
    Example:
      pipetune replay online big.parquet --jobs 10000 --slots 4 --load 0.7
    """
    import numpy as np

    from pipetune.replay.online import STRATEGIES, Services, check_load, poisson_jobs, simulate
    from pipetune.replay.runner import reuse_note

    started = time.perf_counter()
    try:
        loaded, config = _trace_and_config(trace_path, config_path)
        workloads = loaded.workloads()
        services = Services(loaded, config, noise=noise)
        reuse = reuse_note(loaded, config)
        per_s, loads = _arrival_rate(services, workloads, seeds, slots, load, rate)
        check_load(loads, allow_overload, click.echo)
        jobs = poisson_jobs(count, per_s, workloads, seeds, np.random.default_rng(seed))
        results = [
            simulate(s, jobs, services, slots, loads[s], profile_noise=profile_noise, seed=seed)
            for s in STRATEGIES
        ]
    except PipeTuneError as exc:
        fail(f"error: {exc}", exc.exit_code)
    elapsed = time.perf_counter() - started
    lines = [
        f"Online replay of {trace_path} ({_label(loaded)}): {count} jobs, Poisson arrivals at "
        f"{per_s * 3600:.2f}/h over {len(workloads)} workload(s) × {seeds} seed(s), "
        f"{slots} slot(s), profile noise {profile_noise:g}, noise {noise:g}.",
        f"{reuse}.",
        "",
        *_online_table(results),
        "",
        f"{services.replays} distinct tuning jobs replayed; {elapsed:.1f} s in all.",
    ]
    out_dir = Path(out)
    _write_csv(out_dir / "online.csv", [r.row() for r in results])
    (out_dir / "online.md").write_text("\n".join(lines) + "\n")
    _draw_online(out_dir / "online.png", results, lines[0])
    click.echo("\n".join(lines))
    click.echo(
        f"results: {out_dir / 'online.md'}, {out_dir / 'online.csv'}, {out_dir / 'online.png'}"
    )


def _draw_offline(path: Path, rows: list[dict[str, Any]], trace_path: str, loaded: Any) -> None:
    """offline.png: the table's ratios to v1 (median, min–max over seeds) and accuracy."""
    from pipetune.report.bench_plots import strategies_figure, write_figure

    title = f"Offline replay of {trace_path} ({_label(loaded)}): ratios to v1 per seed"
    write_figure(strategies_figure(rows, title), path)


def _draw_online(path: Path, results: list[StrategyResult], title: str) -> None:
    """online.png: response times, offered load and energy per strategy."""
    from pipetune.report.bench_plots import online_figure, write_figure

    short = title.split(":")[0]  # "Online replay of TRACE (recorded trace)"
    write_figure(online_figure([r.row() for r in results], short), path)


def _arrival_rate(
    services: Services,
    workloads: list[str],
    seeds: int,
    slots: int,
    load: float,
    rate: float | None,
) -> tuple[float, dict[str, float]]:
    """Jobs per second (--rate, or what gives v1 the offered --load) and each strategy's load."""
    from pipetune.replay.online import STRATEGIES, mean_service

    means = {s: mean_service(services, s, workloads, seeds) for s in STRATEGIES}
    per_s = rate / 3600 if rate else load * slots / means["v1"]
    return per_s, {s: per_s * means[s] / slots for s in STRATEGIES}


def _online_table(results: list[StrategyResult]) -> list[str]:
    """One markdown row per strategy; energy relative to v1's, the first result."""
    v1 = results[0]
    lines = [
        "| strategy | load | mean response s | p95 response s | mean wait s | mean service s "
        "| energy J | vs v1 | mean best acc. | recognised trials | false hits |",
        "|" + " --- |" * 11,
    ]
    for r in results:
        recognised = f"{r.recognised}/{r.trials}" if r.trials else "–"
        false_hits = str(r.false_hits) if r.trials else "–"
        accuracy = f"{r.mean_best_accuracy:.3f}" if r.mean_best_accuracy is not None else "–"
        lines.append(
            f"| {r.strategy} | {r.offered_load:.2f} | {r.mean_response_s:,.0f} "
            f"| {r.p95_response_s:,.0f} | {r.mean_wait_s:,.0f} | {r.mean_service_s:,.0f} "
            f"| {r.energy_j:,.0f} ({r.energy_source}) | {r.energy_j / v1.energy_j:.2f} "
            f"| {accuracy} | {recognised} | {false_hits} |"
        )
    return lines
