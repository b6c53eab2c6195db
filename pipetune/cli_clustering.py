"""`pipetune clustering show|fit|reset`: look at and manage the recurring-job model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipetune.cli_common import DEFAULT_CONFIG


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help=f"Tuning config naming the model file. Default: ./{DEFAULT_CONFIG}.",
)
@click.pass_context
def clustering(ctx: click.Context, config_path: str | None) -> None:
    """The recurring-job model: k-means over job profiles → best known system setting.

    \b
    Examples:
      pipetune clustering show
      pipetune clustering --config other.conf fit
    """
    ctx.obj = config_path or DEFAULT_CONFIG


def _service(config_path: str) -> Any:
    from pipetune.config import load_config
    from pipetune.recognition.service import RecognitionService

    config = load_config(config_path)
    return RecognitionService(config.recognition, config.probing.objective, config.app.name)


@clustering.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full description as JSON.")
@click.pass_obj
def show(config_path: str, as_json: bool) -> None:
    """Clusters, sizes, thresholds and the (cluster, batch size) → setting table.

    \b
    Examples:
      pipetune clustering show
      pipetune clustering show --json
    """
    service = _service(config_path)
    if service.recognizer is None:
        raise click.ClickException(service.problem or "no model")
    info = service.recognizer.describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"model: {service.path}")
    click.echo(
        f"status: {info['status']} ({info['observations']} observation(s), "
        f"objective {info['objective']})"
    )
    if info["fitted"]:
        click.echo(f"k = {info['k']} ({info['k_rule']}); threshold: {info['threshold_rule']}")
        click.echo(f"{'cluster':>7} {'size':>5} {'threshold':>9}  jobs")
        for c in info["clusters"]:
            jobs = ", ".join(f"{j}×{n}" for j, n in c["jobs"].items())
            click.echo(f"{c['cluster']:>7} {c['size']:>5} {c['threshold']:>9.2f}  {jobs}")
    click.echo("knowledge (cluster, batch size → best setting):")
    if not info["knowledge"]:
        click.echo("  (empty: no probed trial learnt yet)")
    for row in info["knowledge"]:
        setting = ",".join(f"{k}={v}" for k, v in row["setting"].items())
        values = ", ".join(f"{k} {v:.2f}" for k, v in row["values"].items())
        click.echo(
            f"  {row['cluster']:>3} {row['batch_size']:>6} → {setting} by {row['metric']} "
            f"({values}; {row['count']} observation(s))"
        )
    for row in info["replaced"]:
        click.echo(
            f"  replaced: cluster {row['cluster']} batch {row['batch_size']} "
            f"{row['setting']} → {row['replaced_by']}"
        )


@clustering.command()
@click.pass_obj
def fit(config_path: str) -> None:
    """Refit the model now from every stored observation and save it.

    \b
    Example:
      pipetune clustering fit
    """
    from pipetune.recognition.persistence import save

    service = _service(config_path)
    if service.recognizer is None:
        raise click.ClickException(service.problem or "no model")
    fitted = service.recognizer.fit()
    save(service.recognizer, service.path)
    click.echo(f"{'fitted' if fitted else 'not fitted'}: {service.recognizer.status}")


@clustering.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def reset(config_path: str, yes: bool) -> None:
    """Delete the model file (the next run probes every trial and starts learning again).

    \b
    Example:
      pipetune clustering reset --yes
    """
    from pipetune.config import load_config

    path: Path = load_config(config_path).recognition.path
    if not path.exists():
        click.echo(f"no model at {path}")
        return
    if not yes:
        click.confirm(f"delete {path}?", abort=True)
    path.unlink()
    click.echo(f"deleted {path}")
