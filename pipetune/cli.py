"""The `pipetune` command: tuning runs and `doctor`; the subcommand groups live in the other
cli_*.py modules. Errors become messages and exit codes; tracebacks only under --debug."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipetune.cli_common import DEFAULT_CONFIG, fail
from pipetune.errors import ConfigError, PipeTuneError
from pipetune.records import Mode

if TYPE_CHECKING:  # imported when needed: `pipetune --help` must stay quick
    from pipetune.config import TuningConfig
    from pipetune.progress import Progress
    from pipetune.recognition.service import RecognitionService
    from pipetune.telemetry.energy_source import EnergySource
    from pipetune.tuner import Tuner


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help=f"Tuning config (JSON). Default: ./{DEFAULT_CONFIG}.",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=None,
    help="pipetune (probe system settings inside each trial; default), v1 (hyperparameters "
    "only, default setting), v2 (system parameters as extra search dimensions) or oracle "
    "(each trial at the best setting a recorded trace knows for it; needs --oracle-trace).",
)
@click.option(
    "--oracle-trace",
    type=click.Path(dir_okay=False, exists=True),
    help="With --mode oracle: the trace (pipetune trace record) that says each "
    "configuration's best setting.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Continue a stopped run directory: finished trials are not re-run.",
)
@click.option(
    "--dry-run", is_flag=True, help="Validate the config and print the plan; run nothing."
)
@click.option(
    "--no-recognition", is_flag=True, help="Do not recognise recurring jobs: probe every trial."
)
@click.option("--quiet", is_flag=True, help="No progress lines (for scripts).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="pipetune")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    mode: str | None,
    oracle_trace: str | None,
    resume_dir: str | None,
    dry_run: bool,
    no_recognition: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Tune a BigDL training job's hyperparameters and system parameters on Spark.

    Inside each hyperparameter trial the first epochs probe system settings (one epoch each,
    training continues from the trial's checkpoint); the best setting runs the rest.

    \b
    Examples:
      pipetune --config pipetune.conf
      pipetune --dry-run
      pipetune --mode v1 --quiet
      pipetune --mode oracle --oracle-trace bench/traces/lenet5-local2.csv.gz
      pipetune --resume runs/20250101-120000-ab12
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        _tune(config_path, mode, resume_dir, dry_run, quiet, no_recognition, oracle_trace)
    except ConfigError as exc:
        fail(str(exc), exc.exit_code)
    except PipeTuneError as exc:
        if debug:
            raise
        fail(f"error: {exc}", exc.exit_code)


def _tune(
    config_path: str | None,
    mode_name: str | None,
    resume_dir: str | None,
    dry_run: bool,
    quiet: bool,
    no_recognition: bool = False,
    oracle_trace: str | None = None,
) -> None:
    from pipetune.config import check_mode, load_config
    from pipetune.describe import describe_plan
    from pipetune.progress import Progress
    from pipetune.tuner import new_run_dir

    if resume_dir:
        config, mode, no_recognition = _resumed(Path(resume_dir), config_path, mode_name)
    else:
        config = load_config(config_path or DEFAULT_CONFIG)
        mode = Mode(mode_name or "pipetune")
    check_mode(config, mode.value)
    oracle = _oracle(config, mode, oracle_trace)
    progress = Progress(quiet=quiet)
    if dry_run:
        for line in describe_plan(config, mode):
            click.echo(line)
        return

    from pipetune.factory import build_backend, build_energy_source, build_store

    energy = build_energy_source(config.power)
    backend = build_backend(config, energy)
    store = build_store(config.store)
    run_dir = Path(resume_dir) if resume_dir else new_run_dir(config)
    for line in describe_plan(config, mode):
        progress.note(line)
    progress.note(f"run directory: {run_dir}")
    from pipetune.tuner import Tuner

    recognition = _recognition(config, mode, no_recognition, progress)
    tuner = Tuner(
        config,
        mode,
        backend,
        store,
        progress,
        run_dir,
        energy.describe(),
        recognition,
        oracle=oracle,
    )
    summary = _run_metered(tuner, energy)
    _print_summary(summary, run_dir, quiet)
    if summary["totals"]["trials_done"] == 0:
        fail("error: no trial finished (see the segment logs in the run directory)", 1)


def _resumed(
    run_dir: Path, config_path: str | None, mode_name: str | None
) -> tuple[TuningConfig, Mode, bool]:
    """A stopped run's config snapshot, its mode and whether it ran without recognition."""
    from pipetune.tuner import load_snapshot

    if config_path:
        raise click.UsageError(
            "--resume continues a run with its own config snapshot; drop --config"
        )
    config = load_snapshot(run_dir)
    started = _run_started(run_dir)
    mode = Mode(mode_name or started.get("mode", "pipetune"))
    return config, mode, not started.get("recognition", True)


def _recognition(
    config: TuningConfig, mode: Mode, no_recognition: bool, progress: Progress
) -> RecognitionService | None:
    """The recurring-job recognizer, in pipetune mode unless switched off; notes its problem."""
    if mode is not Mode.PIPETUNE or not config.recognition.enabled or no_recognition:
        return None
    from pipetune.recognition.service import RecognitionService

    recognition = RecognitionService(
        config.recognition, config.probing.objective, job=config.app.name
    )
    if recognition.problem:
        progress.note(f"note: {recognition.problem}")
    return recognition


def _run_metered(tuner: Tuner, energy: EnergySource) -> dict[str, Any]:
    """Run the tuner with the energy meter on; SIGTERM and SIGINT stop it cleanly (exit 130)."""
    from pipetune.tuner import Interrupted

    signal.signal(signal.SIGTERM, _raise_interrupt)
    # A process started in the background by a non-interactive shell inherits SIGINT ignored;
    # an explicit SIGINT (kill -INT, a scheduler) must still stop the run cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    energy.start()
    try:
        return tuner.run()
    except Interrupted as exc:
        fail(str(exc), 130)
    finally:
        energy.stop()


def _oracle(config: Any, mode: Mode, trace_path: str | None) -> Any:
    """The oracle hook for --mode oracle: the trace's best setting per configuration."""
    if mode is not Mode.ORACLE:
        if trace_path:
            raise click.UsageError("--oracle-trace is only for --mode oracle")
        return None
    if not trace_path:
        raise click.UsageError("--mode oracle needs --oracle-trace (a recorded trace)")
    from pipetune.probing.candidates import default_setting
    from pipetune.replay import Trace
    from pipetune.replay.oracle import oracle_for

    trace = Trace.load(trace_path)
    workloads = trace.workloads()
    if config.app.name in workloads:
        workload = config.app.name
    elif len(workloads) == 1:
        workload = workloads[0]
    else:
        raise click.UsageError(
            f"{trace_path} has workloads {', '.join(workloads)}; none is the app's name "
            f"{config.app.name!r}"
        )
    return oracle_for(
        trace,
        workload,
        config.search.epochs,
        config.probing.objective,
        default_setting(config.system_parameters),
    )


def _run_started(run_dir: Path) -> dict[str, Any]:
    """The journal's first event: how the run was started (mode, recognition on or off)."""
    from pipetune.journal import read_events

    events = read_events(run_dir / "journal.jsonl")
    return next((e for e in events if e["type"] == "run_started"), {})


def _print_summary(summary: dict[str, Any], run_dir: Path, quiet: bool) -> None:
    if quiet:
        click.echo(str(run_dir / "summary.json"))
        return
    click.echo("")
    click.echo(
        f"{'trial':6} {'status':7} {'accuracy':>8} {'chosen':24} {'source':9} "
        f"{'total s':>8} {'probe s':>8} {'start s':>8} {'energy J':>9}"
    )
    for t in summary["trials"]:
        chosen = ",".join(f"{k}={v}" for k, v in (t["system"]["chosen"] or {}).items()) or "-"
        acc = f"{t['accuracy']:.3f}" if t["accuracy"] is not None else "-"
        click.echo(
            f"{t['id']:6} {t['status']:7} {acc:>8} {chosen:24} {t['system']['source']:9} "
            f"{t['time']['total_s']:8.1f} {t['time']['probe_s']:8.1f} "
            f"{t['time']['startup_s']:8.1f} {t['energy']['joules']:9.0f}"
        )
    best = summary["best"]
    if best:
        click.echo(
            f"best: {best['trial']} accuracy {best['accuracy']:.3f} {best['hyperparameters']}"
        )
    click.echo(f"energy: {summary['energy_meter']}")
    click.echo(f"results: {run_dir / 'summary.json'}")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help=f"Also check this config's meter and store. Default: ./{DEFAULT_CONFIG} if present.",
)
def doctor(config_path: str | None) -> None:
    """Say which probes, counters and services work on this machine, which do not, and why.

    \b
    Examples:
      pipetune doctor
      pipetune doctor --config pipetune.conf
    """
    from pipetune.config import load_config
    from pipetune.doctor import run_checks

    config = None
    path = Path(config_path or DEFAULT_CONFIG)
    if config_path or path.exists():
        try:
            config = load_config(path)
        except ConfigError as exc:
            fail(str(exc), exc.exit_code)
    checks = run_checks(config)
    for check in checks:
        click.echo(check.line())
    if any(c.required and not c.ok for c in checks):
        fail("doctor: a required part is missing (see FAIL above)", 1)


def _register_subcommands() -> None:
    from pipetune.cli_clustering import clustering
    from pipetune.cli_replay import replay
    from pipetune.cli_report import report
    from pipetune.cli_trace import trace

    main.add_command(clustering)
    main.add_command(trace)
    main.add_command(replay)
    main.add_command(report)


_register_subcommands()
