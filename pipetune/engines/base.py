"""What every training engine gives the app config: its own settings, validated by its own
module (pipetune/engines/<engine>.py), and the facts the rest of the tuner asks of them.

The app config names its `engine` (`Engine`); the common fields (script, flags, timeout...)
are read by config_app.py, the engine's own by its `EngineSpec.parse`, with the same
JSON-path problems. Imports only `config_check` and `errors`.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pipetune.config_check import Checker, show


class Engine(enum.StrEnum):
    """The engines an app may train on (the app config's `engine`)."""

    BIGDL = "bigdl"
    TORCH = "torch"


LOCAL_MASTER = re.compile(r"^local(\[(\d+|\*)\])?$")
SPARK_MASTER = re.compile(r"^spark://[^:/\s]+:\d+$")


class EngineSettings(ABC):
    """An engine's own part of an app config (a frozen dataclass in each engine module)."""

    engine: ClassVar[Engine]
    backend: ClassVar[str]  # the name of the backend that runs it (backends/registry.py)
    # the system parameters the engine itself takes (others reach the app as flags)
    system_parameters: ClassVar[tuple[str, ...]]
    # those a running job takes (backends re-pin its processes, the app applies its part)
    live_system_parameters: ClassVar[tuple[str, ...]] = ("cores",)

    @property
    @abstractmethod
    def is_local(self) -> bool:
        """The whole job runs on this host (no cluster manager)."""

    @abstractmethod
    def system_value(self, c: Checker, path: str, name: str, value: Any) -> str | None:
        """A value (a string or a number) of one of `system_parameters`, checked and
        normalised; None after recording its problem at `path`."""

    @abstractmethod
    def describe(self) -> str:
        """How a segment runs, in words (the run header, `--dry-run`)."""


@dataclass(frozen=True)
class EngineSpec:
    """An engine's keys in the app config and the parser of their values."""

    keys: frozenset[str]
    # (checker, the app file's path prefix, its JSON object, the project directory)
    parse: Callable[[Checker, str, dict[str, Any], Path], EngineSettings | None]


def cores_value(c: Checker, path: str, value: Any) -> int | None:
    """A whole number of cores ≥ 1, or None after its problem."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        c.problem(path, "a whole number of cores ≥ 1", show(value))
        return None
    return int(text)


def spark_master(c: Checker, path: str, value: Any) -> str:
    """A Spark master URL: `local[N]` or `spark://host:port`."""
    master = c.string(path, value)
    if master and not (LOCAL_MASTER.match(master) or SPARK_MASTER.match(master)):
        c.problem(path, 'a Spark master "local[N]" or "spark://host:port"', show(master))
    return master
