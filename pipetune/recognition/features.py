"""One observation of a job, and its feature vector: which features, log scaling, standardising.

Features of an observation (`FeatureSpec.raw`), by name:

* every feature of its `JobProfile` (perf events that counted, `proc.*` counters), all of them
  rates per second, except the names in `DEFAULT_EXCLUDED`:
  `proc.threads` is a level (live threads), not a rate; `task-clock` and `cpu-clock` under
  system-wide perf are "CPUs × wall time" and say nothing (`proc.cpu_*_s` carry CPU use);
  `duration_time` is ns per second, i.e. always 1e9; `proc.read_bytes`/`proc.write_bytes` count
  block-device I/O, which depends on the page cache, not the job (measured here: 5 k–72 k B/s
  across three runs of one job), while `proc.read_chars`/`write_chars` are stable.
* but not a counter that repeats another one (`DUPLICATE_OF`) when that one is present:
  perf's `page-faults` is `minor-faults` + `major-faults` (major ≈ 0 here), and
  `proc.minor_faults` is `minor-faults` again from /proc. Counted three times, the noisiest
  counter here (minor faults vary by up to 0.8 log units between runs of one job) weighed
  three times in every distance. Without perf, `proc.minor_faults` stays.
  Unsupported events are not features.
* `job.power_w[SOURCE]`: energy_j / epoch_s of the profiling epoch, in W. The meter is part of
  the name because RAPL, a PDU and an estimate do not measure the same thing: a job metered by
  another source is a feature mismatch, not a silently different number. No energy, no feature.
* `job.s_per_sample`: epoch_s / samples.
* `job.batch_size`.

Scaling: each value v becomes sign(v)·log1p(|v| / unit), with unit = `UNIT_SHARE` (1 %) of the
feature's median |value| over the training rows (1 where that is 0). That is log(v) up to a
constant for every value above a few % of the typical one, whatever the feature's unit, so
seconds per sample (~1e-3) and CPU seconds per second (~0.5) weigh relative changes as
counters of 1e5/s do (plain log1p made them linear, i.e. nearly constant), while a zero stays
finite; a negative value (a counter that went backwards) keeps its sign instead of crashing.
Then (v − mean) / std with the mean and std of the training rows, std floored at `STD_FLOOR`.
The names, their order, the refs, the means and the stds are part of the model (`Scaler`), and
every vector is built by name against them: a different feature set raises `FeatureMismatch`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipetune.errors import PipeTuneError, Problem
from pipetune.probing.selection import ProbeResult
from pipetune.records import SystemSetting
from pipetune.telemetry.profile import JobProfile

DEFAULT_EXCLUDED: frozenset[str] = frozenset(
    {
        "proc.threads",
        "task-clock",
        "cpu-clock",
        "duration_time",
        "proc.read_bytes",
        "proc.write_bytes",
    }
)
DUPLICATE_OF: dict[str, str] = {
    "page-faults": "minor-faults",
    "proc.minor_faults": "minor-faults",
}
BATCH_SIZE = "job.batch_size"
SECONDS_PER_SAMPLE = "job.s_per_sample"
POWER = "job.power_w"
STD_FLOOR = 0.25
UNIT_SHARE = 0.01
"""Smallest std of a log-scaled feature: one σ is never less than a ~28 % change of a rate, so a
feature that was constant (or, with few runs, happened to agree) in training neither divides by
~0 nor dominates the distance. Runs of one job on a shared 2-core machine differ by that much
(minor faults 7 k–14 k/s over three runs here)."""


class FeatureMismatch(PipeTuneError):
    """An observation's feature set is not the model's: names missing or extra."""

    def __init__(self, missing: Iterable[str], extra: Iterable[str]) -> None:
        self.missing = tuple(sorted(missing))
        self.extra = tuple(sorted(extra))
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"extra {', '.join(self.extra)}")
        super().__init__(f"profile features differ from the model's: {'; '.join(parts)}")


class InvalidObservation(PipeTuneError):
    """An observation's descriptors are out of range; lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid observation:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Observation:
    """A trial's profiling epoch: its profile and descriptors, plus its probes when it probed.

    `probes` are in the order they ran, the default setting first, exactly as probing's
    choice saw them, and `chosen` is what it chose. `job` is a label for reports (e.g. the app
    name); the model never reads it.
    """

    profile: JobProfile
    batch_size: int
    epoch_s: float
    samples: int
    energy_j: float | None = None
    energy_source: str = "none"
    probes: tuple[ProbeResult, ...] = ()
    job: str = ""
    # The setting the trial's plan chose from its probes (window probes keep the default
    # unless a candidate is faster with confidence); None: the best probe by the objective.
    chosen: SystemSetting | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("batch_size", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(Problem(name, "an integer > 0", repr(value)))
        if not _positive(self.epoch_s):
            problems.append(Problem("epoch_s", "a finite number > 0", repr(self.epoch_s)))
        if self.energy_j is not None and not (
            _number(self.energy_j) and math.isfinite(self.energy_j) and self.energy_j >= 0
        ):
            problems.append(
                Problem("energy_j", "a finite number >= 0 or None", repr(self.energy_j))
            )
        if problems:
            raise InvalidObservation(problems)
        object.__setattr__(self, "probes", tuple(self.probes))

    @property
    def power_w(self) -> float | None:
        """Mean power of the profiling epoch, or None without a meter."""
        if self.energy_j is None or self.energy_source == "none":
            return None
        return self.energy_j / self.epoch_s


@dataclass(frozen=True)
class FeatureSpec:
    """Which features an observation contributes (see the module docstring)."""

    exclude: frozenset[str] = DEFAULT_EXCLUDED
    batch_size: bool = True
    power: bool = True
    time_per_sample: bool = True

    def raw(self, obs: Observation) -> dict[str, float]:
        """Unscaled features of `obs`, sorted by name."""
        features = obs.profile.features
        out = {
            k: v
            for k, v in features.items()
            if k not in self.exclude and DUPLICATE_OF.get(k) not in features
        }
        if self.power and (power := obs.power_w) is not None:
            out[f"{POWER}[{obs.energy_source}]"] = power
        if self.time_per_sample:
            out[SECONDS_PER_SAMPLE] = obs.epoch_s / obs.samples
        if self.batch_size:
            out[BATCH_SIZE] = float(obs.batch_size)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "exclude": sorted(self.exclude),
            "batch_size": self.batch_size,
            "power": self.power,
            "time_per_sample": self.time_per_sample,
        }


def log_scale(values: np.ndarray) -> np.ndarray:
    """sign(v)·log1p(|v|): log1p for rates ≥ 0, mirrored for the odd negative value."""
    return np.sign(values) * np.log1p(np.abs(values))


@dataclass(frozen=True)
class Scaler:
    """Feature names in model order, with the mean and std of each log-scaled feature."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    ref: tuple[float, ...] = ()  # per-feature unit of the log scale; () = 1 for every feature
    _mean: np.ndarray = field(init=False, repr=False, compare=False)
    _ref: np.ndarray = field(init=False, repr=False, compare=False)
    _std: np.ndarray = field(init=False, repr=False, compare=False)
    _index: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.ref:
            object.__setattr__(self, "ref", tuple(1.0 for _ in self.names))
        if not (len(self.names) == len(self.mean) == len(self.std) == len(self.ref)):
            raise ValueError("names, mean, std and ref must have the same length")
        object.__setattr__(self, "_ref", np.asarray(self.ref, dtype=float))
        object.__setattr__(self, "_mean", np.asarray(self.mean, dtype=float))
        object.__setattr__(self, "_std", np.asarray(self.std, dtype=float))
        object.__setattr__(self, "_index", frozenset(self.names))

    @classmethod
    def fit(cls, names: Sequence[str], rows: np.ndarray) -> Scaler:
        """From raw (unscaled) training rows, one column per name."""
        rows = np.asarray(rows, dtype=float)
        ref = np.median(np.abs(rows), axis=0) * UNIT_SHARE
        ref = np.where(ref > 0, ref, 1.0)
        logged = log_scale(rows / ref)
        std = np.maximum(logged.std(axis=0), STD_FLOOR)
        return cls(
            tuple(names),
            tuple(map(float, logged.mean(axis=0))),
            tuple(map(float, std)),
            tuple(map(float, ref)),
        )

    def check(self, features: Mapping[str, float]) -> None:
        """Raise `FeatureMismatch` unless `features` has exactly the model's names."""
        if features.keys() != self._index:
            raise FeatureMismatch(self._index - features.keys(), features.keys() - self._index)

    def row(self, features: Mapping[str, float]) -> np.ndarray:
        """Raw values in model order (by name, never by position), after `check`."""
        self.check(features)
        return np.fromiter((features[n] for n in self.names), dtype=float, count=len(self.names))

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Raw rows in model order → log-scaled, standardised rows."""
        return (log_scale(rows / self._ref) - self._mean) / self._std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Standardised values → raw scale (for reports)."""
        logged = z * self._std + self._mean
        return np.sign(logged) * np.expm1(np.abs(logged)) * self._ref


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _number(value) and math.isfinite(value) and value > 0  # type: ignore[arg-type,operator]
