"""Every `pipetune` command and subcommand has help, an example of its own, and help on every
option. The command tree is walked from `pipetune.cli.main`, so a new command is checked too."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from pipetune.cli import main

CommandPath = tuple[str, ...]  # the command names after `pipetune`; () is `pipetune` itself


def walk(
    command: click.Command, path: CommandPath = ()
) -> Iterator[tuple[CommandPath, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = dict(walk(main))


def title(path: CommandPath) -> str:
    return " ".join(("pipetune", *path))


def examples(help_text: str) -> list[str]:
    """The lines of the help's "Example:" or "Examples:" section, which a `\\b` keeps whole."""
    lines = help_text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:")]
    if not heads:
        return []
    section = []
    for line in lines[heads[0] + 1 :]:
        if not line.strip():
            break
        section.append(line.strip())
    return section


def command_named(example: str) -> CommandPath:
    """The command an example line runs, following its options through the tree, so that an
    option the command does not have is caught as well."""
    words = shlex.split(example, comments=True)
    assert words[:1] == ["pipetune"], f"{example!r} does not start with `pipetune`"
    path: CommandPath = ()
    command: click.Command = main
    words = words[1:]
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            option = next((p for p in command.params if name in getattr(p, "opts", ())), None)
            assert isinstance(option, click.Option), f"{title(path)} has no option {name}"
            if not option.is_flag and "=" not in word:
                words.pop(0)  # its value
        elif isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
            path = (*path, word)
    return path


def test_the_walk_finds_every_command_we_know():
    # If the walk broke, the checks below would pass on nothing.
    known = {
        (),
        ("doctor",),
        ("clustering", "show"),
        ("clustering", "fit"),
        ("clustering", "reset"),
        ("trace", "record"),
        ("trace", "synthetic"),
        ("trace", "show"),
        ("replay", "offline"),
        ("replay", "online"),
    }
    assert known <= set(COMMANDS)


@pytest.mark.parametrize("path", list(COMMANDS), ids=title)
def test_every_command_has_help_and_an_example_of_itself(path: CommandPath):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = COMMANDS[path]
    assert command.get_short_help_str().strip(), f"`{title(path)}` has no help text"
    found = examples(result.output)
    assert found, (
        f"`{title(path)} --help` shows no example: end the command's docstring with a "
        "paragraph of a `\\b` line, `Examples:` and indented `pipetune ...` lines"
    )
    for line in found:
        named = command_named(line)
        if isinstance(command, click.Group) and not command.invoke_without_command:
            # a group cannot run alone: its examples run one of its commands
            assert named[:-1] == path, f"the example {line!r} runs no command of this group"
        else:
            assert named == path, f"the example {line!r} runs another command"


@pytest.mark.parametrize("path", list(COMMANDS), ids=title)
def test_every_option_says_what_it_is_for(path: CommandPath):
    command = COMMANDS[path]
    silent = [
        p.name
        for p in command.params
        if isinstance(p, click.Option) and not p.help and not p.hidden
    ]
    assert not silent, f"`{title(path)}` options without help: {silent}"
