"""What the `pipetune` command modules share: the default config file, the `--config` option
of the trace and replay commands, loading that config, and how a command fails."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from pipetune.config import TuningConfig

DEFAULT_CONFIG = "pipetune.conf"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Tuning config: system parameters (the first value of each is the default), search "
    "(trials, epochs, sampler), probing objective.",
)


def load(config_path: str) -> TuningConfig:
    """The tuning config at `config_path`, imported only when a command needs it."""
    from pipetune.config import load_config

    return load_config(config_path)


def fail(message: str, code: int) -> NoReturn:
    """End the command: `message` on stderr, exit status `code` (a PipeTuneError's exit_code)."""
    click.echo(message, err=True)
    sys.exit(code)
