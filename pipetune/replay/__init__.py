"""Trace replay: run the tuner's segments from recorded (or synthetic) epochs instead of Spark."""

from __future__ import annotations

from pipetune.replay.backend import ReplayBackend
from pipetune.replay.synthetic import synthetic_trace
from pipetune.replay.trace import (
    COLUMNS,
    VERSION,
    Trace,
    TraceError,
    TraceProblem,
    TraceRow,
    canonical_config,
)

__all__ = [
    "COLUMNS",
    "VERSION",
    "ReplayBackend",
    "Trace",
    "TraceError",
    "TraceProblem",
    "TraceRow",
    "canonical_config",
    "synthetic_trace",
]
