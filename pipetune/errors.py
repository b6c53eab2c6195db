"""The one error tree of PipeTune. The CLI translates these into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class PipeTuneError(Exception):
    """Base of every error PipeTune raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, located by its JSON path."""

    path: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {self.found}"


class ConfigError(PipeTuneError):
    """A configuration is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{len(self.problems)} problem(s){where}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class SegmentFailed(PipeTuneError):
    """A training segment (one spark-submit) did not finish cleanly."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(message)


class AppContractError(SegmentFailed):
    """The app's output broke the contract (e.g. it did not echo the hyperparameters sent)."""


class EnvironmentProblem(PipeTuneError):
    """Java, Spark or BigDL cannot be found or used on this machine."""


class ResumeError(PipeTuneError):
    """A run directory cannot be resumed."""


class RunDirError(PipeTuneError):
    """A directory is not a readable run: no journal, or a corrupt summary.json or journal."""
