"""`pipetune trace record|synthetic|show`: the traces that `pipetune replay` runs on.

The replay package (pandas, numpy) is imported inside the commands, so `pipetune --help` and
tuning runs do not pay for it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import click

from pipetune.cli_common import config_option, fail, load
from pipetune.errors import PipeTuneError


def _settings(config: Any) -> list[Any]:
    from pipetune.probing.candidates import probe_candidates

    return probe_candidates(config.system_parameters, "grid")


def _reuse_line(measured: bool) -> str:
    if measured:
        return (
            "process reuse: the last group at each setting runs with reuseProcess, then one "
            "more epoch in its idle process (reuse_startup_s, reuse_epoch1_ratio)"
        )
    return "process reuse: reuseProcess is off in the app config, so it is not measured"


@click.group()
def trace() -> None:
    """Record, generate and inspect traces (docs/TRACE_FORMAT.md).

    \b
    Examples:
      pipetune trace record --configs 3 --out my.csv.gz
      pipetune trace show bench/traces/lenet5-local2.csv.gz
    """


@trace.command()
@config_option
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
    backend, with the configured meter and profiler. With reuseProcess (the default), the
    last one at each setting keeps its process, and one epoch of another configuration
    run in it measures what a reused process costs.

    \b
    Example:
      pipetune trace record --config pipetune.conf --configs 3 --out my.csv.gz
    """
    try:
        config = load(config_path)
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
        # Each group from a fresh process: a trace's start-up is a launch's (TRACE_FORMAT.md);
        # with reuseProcess, a second backend keeps processes idle to measure their reuse.
        fresh = dataclasses.replace(config.app, reuse_process=False)
        backend = build_backend(dataclasses.replace(config, app=fresh), energy)
        reusing = build_backend(config, energy) if config.app.reuse_process else None
        click.echo(_reuse_line(reusing is not None))
        work_dir = config.runs_dir / f"trace-{time.strftime('%Y%m%d-%H%M%S')}"
        energy.start()
        try:
            result = record_trace(
                config, backend, Path(out), work_dir, workload=name, count=count,
                say=click.echo, reuse_backend=reusing,
            )  # fmt: skip
        finally:
            backend.close()
            if reusing is not None:
                reusing.close()
            energy.stop()
    except PipeTuneError as exc:
        fail(f"error: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        fail(f"interrupted; {out} holds every finished segment (run again to continue)", 130)
    if result is None:
        fail("error: no segment finished; nothing written", 1)
    click.echo(f"wrote {out}: {len(result)} rows, segment logs under {work_dir}")


@trace.command()
@config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Trace file to write (.parquet or .csv.gz).",
)
@click.option(
    "--workloads",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many made-up workloads (jobs).",
)
@click.option(
    "--configs",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Configurations per workload.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the generated numbers."
)
def synthetic(config_path: str, out: str, workloads: int, configs: int, seed: int) -> None:
    """Generate a synthetic trace (every row labelled synthetic) for scale studies.

    Settings are every combination of the config's system parameters; epochs are its
    search.epochs.

    \b
    Example:
      pipetune trace synthetic --out big.parquet --workloads 20
    """
    try:
        config = load(config_path)
        from pipetune.replay import synthetic_trace

        result = synthetic_trace(workloads, configs, _settings(config), config.search.epochs, seed)
        result.save(out)
    except PipeTuneError as exc:
        fail(f"error: {exc}", exc.exit_code)
    click.echo(f"wrote {out}: {len(result)} synthetic rows, {workloads} workload(s)")


@trace.command()
@click.argument("path", type=click.Path(dir_okay=False))
def show(path: str) -> None:
    """Check a trace and summarise it: workloads, configurations, settings, epochs.

    \b
    Example:
      pipetune trace show bench/traces/lenet5-local2.csv.gz
    """
    try:
        from pipetune.replay import Trace

        loaded = Trace.load(path)
    except PipeTuneError as exc:
        fail(f"error: {exc}", exc.exit_code)
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
