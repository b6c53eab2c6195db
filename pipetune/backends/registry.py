"""The backends by name, registered here and nowhere else (`BACKENDS`).

Each builder takes the run's `BackendInputs` and uses what it needs: a live backend the
tuning config and the energy source, the replay a trace. Heavy modules are imported by the
builder that needs them, so looking a name up starts nothing. A new backend is its module (a
`Backend` subclass with its `Job`: backends/base.py) and one builder here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pipetune.errors import ConfigError, Problem

if TYPE_CHECKING:
    from pipetune.backends.base import Backend
    from pipetune.config import TuningConfig
    from pipetune.replay.trace import Trace
    from pipetune.telemetry.energy_source import EnergySource

T = TypeVar("T")


@dataclass(frozen=True)
class BackendInputs:
    """What a backend may be built from."""

    config: TuningConfig | None = None  # a live backend's app config and base directory
    energy: EnergySource | None = None  # how a live backend measures energy
    trace: Trace | None = None  # what the replay answers from, and its options
    workload: str = ""
    noise: float = 0.0
    seed: int = 0
    reuse: bool = False  # the replay keeps idle processes, as `reuseProcess` does live


def spark_submit(inputs: BackendInputs) -> Backend[Any]:
    """spark-submit of the app (BigDL), with what this machine offers: the perf events that
    count here, how a running job is moved to other CPUs, Java and Spark."""
    from pipetune.backends.spark import SparkSubmitBackend
    from pipetune.placement import detect_placer, remove_stale_groups
    from pipetune.spark_env import discover
    from pipetune.telemetry.profiler import ProfilerSetup

    config = _given(inputs.config, "a tuning config", "spark-submit")
    energy = _given(inputs.energy, "an energy source", "spark-submit")
    profiler = ProfilerSetup.detect()  # which perf events count here, found once per run
    placer, _ = detect_placer()  # how a running job is moved to other CPUs (cpuset or affinity)
    remove_stale_groups()  # empty cpusets a killed tuner left behind
    return SparkSubmitBackend(config.app, discover(), energy, config.base_dir, profiler, placer)


def torch_process(inputs: BackendInputs) -> Backend[Any]:
    """A PyTorch app as a plain process or through its TorchDistributor launcher, measured
    and placed as spark-submit's jobs are."""
    from pipetune.backends.torch_backend import TorchBackend, discover_torch
    from pipetune.placement import detect_placer, remove_stale_groups
    from pipetune.telemetry.profiler import ProfilerSetup

    config = _given(inputs.config, "a tuning config", "torch")
    energy = _given(inputs.energy, "an energy source", "torch")
    env = discover_torch(config.app)
    profiler = ProfilerSetup.detect()
    placer, _ = detect_placer()
    remove_stale_groups()
    return TorchBackend(config.app, env, energy, config.base_dir, profiler, placer)


def replay(inputs: BackendInputs) -> Backend[Any]:
    """Segments answered from a recorded (or synthetic) trace of one workload."""
    from pipetune.replay.backend import ReplayBackend

    trace = _given(inputs.trace, "a trace", "replay")
    return ReplayBackend(
        trace, inputs.workload, noise=inputs.noise, seed=inputs.seed, reuse=inputs.reuse
    )


Builder = Callable[[BackendInputs], "Backend[Any]"]

BACKENDS: dict[str, Builder] = {
    "spark-submit": spark_submit,
    "torch": torch_process,
    "replay": replay,
}


def build(name: str, inputs: BackendInputs) -> Backend[Any]:
    """The backend registered as `name`, built from `inputs`; an unknown name is a config
    error that lists the known ones."""
    builder = BACKENDS.get(name)
    if builder is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError([Problem("backend", f"one of {known}", repr(name))])
    return builder(inputs)


def _given(value: T | None, what: str, backend: str) -> T:
    if value is None:
        raise ValueError(f"the {backend} backend is built from {what}; none was given")
    return value
