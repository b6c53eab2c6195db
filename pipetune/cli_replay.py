"""`pipetune trace record|synthetic|show` and `pipetune replay offline|online`.

pandas, numpy and the replay package are imported inside the commands, so `pipetune --help`
and tuning runs do not pay for them.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from pipetune.errors import PipeTuneError

DEFAULT_CONFIG = "pipetune.conf"

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Tuning config: system parameters (the first value of each is the default), search "
    "(trials, epochs, sampler), probing objective.",
)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _load(config_path: str) -> Any:
    from pipetune.config import load_config

    return load_config(config_path)


def _settings(config: Any) -> list[Any]:
    from pipetune.probing.candidates import probe_candidates

    return probe_candidates(config.system_parameters, "grid")


# ---------------------------------------------------------------------------------- trace


@click.group()
def trace() -> None:
    """Record, generate and inspect traces (docs/TRACE_FORMAT.md)."""


@trace.command()
@_config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Trace file to write (.parquet or .csv.gz). An existing one is continued.",
)
@click.option("--workload", help="Workload name in the trace. Default: the app's name.")
@click.option(
    "--configs",
    "count",
    type=click.IntRange(min=1),
    help="How many hyperparameter configurations (default: search.trials; a grid sampler "
    "caps it at the grid's size).",
)
def record(config_path: str, out: str, workload: str | None, count: int | None) -> None:
    """Run real trials over configurations × every system setting and write a trace.

    Each (configuration, setting) runs search.epochs epochs from scratch through the live
    backend, with the configured meter and profiler.
    """
    try:
        config = _load(config_path)
        from pipetune.factory import build_backend, build_energy_source
        from pipetune.replay.record import grid_plan, record_trace

        plan = grid_plan(config, count)
        name = workload or config.app.name
        click.echo(
            f"recording {name}: {len(plan.configs)} configuration(s) × {len(plan.settings)} "
            f"setting(s) × {plan.epochs} epoch(s) into {out}"
        )
        energy = build_energy_source(config.power)
        click.echo(f"energy: {energy.describe()}")
        # Each group from a fresh process: a trace's start-up is a launch's (TRACE_FORMAT.md)
        fresh = dataclasses.replace(config.app, reuse_process=False)
        backend = build_backend(dataclasses.replace(config, app=fresh), energy)
        work_dir = config.runs_dir / f"trace-{time.strftime('%Y%m%d-%H%M%S')}"
        energy.start()
        try:
            result = record_trace(
                config, backend, Path(out), work_dir, workload=name, count=count, say=click.echo
            )
        finally:
            backend.close()
            energy.stop()
    except PipeTuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        _fail(f"interrupted; {out} holds every finished segment (run again to continue)", 130)
    if result is None:
        _fail("error: no segment finished; nothing written", 1)
    click.echo(f"wrote {out}: {len(result)} rows, segment logs under {work_dir}")


@trace.command()
@_config_option
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--workloads", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--configs",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Configurations per workload.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def synthetic(config_path: str, out: str, workloads: int, configs: int, seed: int) -> None:
    """Generate a synthetic trace (every row labelled synthetic) for scale studies.

    Settings are every combination of the config's system parameters; epochs are its
    search.epochs.
    """
    try:
        config = _load(config_path)
        from pipetune.replay import synthetic_trace

        result = synthetic_trace(workloads, configs, _settings(config), config.search.epochs, seed)
        result.save(out)
    except PipeTuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    click.echo(f"wrote {out}: {len(result)} synthetic rows, {workloads} workload(s)")


@trace.command()
@click.argument("path", type=click.Path(dir_okay=False))
def show(path: str) -> None:
    """Check a trace and summarise it: workloads, configurations, settings, epochs."""
    try:
        from pipetune.replay import Trace

        loaded = Trace.load(path)
    except PipeTuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    frame = loaded.frame
    kind = "synthetic" if loaded.is_synthetic else "recorded"
    click.echo(f"{path}: {len(loaded)} rows ({kind})")
    for workload in loaded.workloads():
        rows = frame[frame["workload"] == workload]
        sources = ", ".join(sorted(set(rows["energy_source"])))
        profile = "yes" if loaded.profile(workload) is not None else "no"
        click.echo(
            f"  {workload}: {rows['config'].nunique()} configuration(s), "
            f"{rows['setting'].nunique()} setting(s), epochs 1..{rows['epoch'].max()}, "
            f"energy {sources}, profile {profile}"
        )


# ---------------------------------------------------------------------------------- replay


@click.group()
def replay() -> None:
    """Re-run tuning strategies over a recorded trace, offline or as an online cluster."""


def _trace_and_config(trace_path: str, config_path: str) -> tuple[Any, Any]:
    from pipetune.replay import Trace

    return Trace.load(trace_path), _load(config_path)


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
@_config_option
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True)
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
    """v1, v2, pipetune and oracle on every workload of TRACE, same seeds and budget."""
    from pipetune.replay.offline import oracle_violations, run_offline, summarise, table

    try:
        loaded, config = _trace_and_config(trace_path, config_path)
        click.echo(
            f"{_label(loaded)} {trace_path}: {len(loaded.workloads())} workload(s); "
            f"{config.search.trials} trial(s) × {config.search.epochs} epoch(s) per job, "
            f"seeds 0..{seeds - 1}, noise {noise:g}"
        )
        outcomes = run_offline(loaded, config, range(seeds), noise=noise)
    except PipeTuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
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
    (out_dir / "offline.md").write_text(f"{header}\n\n{text}\n\n{check}\n")
    click.echo(text)
    click.echo(check)
    for v in violations[:10]:
        click.echo(f"  {v}")
    click.echo(f"results: {out_dir / 'offline.md'}, {out_dir / 'offline.csv'}")
    if violations and noise == 0:
        _fail("error: the oracle was beaten on a noiseless replay", 1)


@replay.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
@_config_option
@click.option("--jobs", "count", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--slots", type=click.IntRange(min=1), default=4, show_default=True)
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
@click.option("--seeds", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Arrivals and noise.")
@click.option("--noise", type=click.FloatRange(min=0.0), default=0.0, show_default=True)
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
    """Poisson arrivals of recurring tuning jobs into SLOTS slots, per strategy."""
    import numpy as np

    from pipetune.replay.online import (
        STRATEGIES,
        Services,
        check_load,
        mean_service,
        poisson_jobs,
        simulate,
    )

    started = time.perf_counter()
    try:
        loaded, config = _trace_and_config(trace_path, config_path)
        workloads = loaded.workloads()
        services = Services(loaded, config, noise=noise)
        means = {s: mean_service(services, s, workloads, seeds) for s in STRATEGIES}
        per_s = rate / 3600 if rate else load * slots / means["v1"]
        loads = {s: per_s * means[s] / slots for s in STRATEGIES}
        check_load(loads, allow_overload, click.echo)
        jobs = poisson_jobs(count, per_s, workloads, seeds, np.random.default_rng(seed))
        results = [
            simulate(s, jobs, services, slots, loads[s], profile_noise=profile_noise, seed=seed)
            for s in STRATEGIES
        ]
    except PipeTuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    elapsed = time.perf_counter() - started
    v1 = results[0]
    lines = [
        f"Online replay of {trace_path} ({_label(loaded)}): {count} jobs, Poisson arrivals at "
        f"{per_s * 3600:.2f}/h over {len(workloads)} workload(s) × {seeds} seed(s), "
        f"{slots} slot(s), profile noise {profile_noise:g}, noise {noise:g}.",
        "",
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
    lines += ["", f"{services.replays} distinct tuning jobs replayed; {elapsed:.1f} s in all."]
    out_dir = Path(out)
    _write_csv(out_dir / "online.csv", [r.row() for r in results])
    (out_dir / "online.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))
    click.echo(f"results: {out_dir / 'online.md'}, {out_dir / 'online.csv'}")
