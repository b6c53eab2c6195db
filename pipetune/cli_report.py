"""`pipetune report RUN_DIR [RUN_DIR...]`: what a run did, or several side by side, as one
HTML page and PNG figures. The report package (and matplotlib) is imported inside the command,
so `pipetune --help` does not pay for it."""

from __future__ import annotations

from pathlib import Path

import click

from pipetune.cli_common import fail
from pipetune.errors import PipeTuneError


@click.command()
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Directory for the HTML page and the PNG figures. Default: RUN_DIR/report for one "
    "run; ./report-compare for several.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def report(run_dirs: tuple[str, ...], out: str | None, debug: bool) -> None:
    """Draw what a run did; with several runs, compare them side by side.

    One run: timelines of every trial (start-ups, epochs, probes, switches, stops), accuracy
    against time and energy with the Pareto front, each probe's figures, and the tables of
    summary.json, in one self-contained report.html plus the same figures as PNG files.
    Several runs (for example v1, v2 and pipetune on the same job): tuning time, energy and
    best accuracy, with ratios to the first run, in compare.html and compare.png.

    \b
    Examples:
      pipetune report runs/20250101-120000-ab12
      pipetune report runs/v1-run runs/pipetune-run --out report-compare
    """
    paths = [Path(p) for p in run_dirs]
    try:
        if len(paths) == 1:
            from pipetune.report.single import write_run_report

            files = write_run_report(paths[0], Path(out) if out else None)
        else:
            from pipetune.report.compare import write_comparison

            files = write_comparison(paths, Path(out) if out else Path("report-compare"))
    except PipeTuneError as exc:
        if debug:
            raise
        fail(f"error: {exc}", exc.exit_code)
    except OSError as exc:  # the output directory cannot be written
        if debug:
            raise
        fail(f"error: cannot write the report: {exc}", 1)
    click.echo(f"report: {files.html}")
    for figure in files.figures:
        click.echo(f"figure: {figure}")
