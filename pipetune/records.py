"""Small value types shared by the tuner, backends, journal and results. Imports nothing else."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Mode(enum.StrEnum):
    """How system parameters are chosen for a trial."""

    PIPETUNE = "pipetune"  # probe settings in the first epochs, then run the best
    V1 = "v1"  # hyperparameters only: every trial at the default setting
    V2 = "v2"  # system parameters sampled as extra search dimensions
    ORACLE = "oracle"  # every trial at the best setting known up front (from a trace): the bound


class Role(enum.StrEnum):
    """What a segment's epochs are for."""

    PROBE = "probe"  # one epoch, or a window of iterations, measured to compare settings
    TRAIN = "train"  # epochs at the trial's chosen setting
    # A process's first epoch at its launch setting before window probes: JIT warm-up (and
    # the recognition profile), trained but never compared (probing.window "iterations").
    WARMUP = "warmup"


class ApplyMode(enum.StrEnum):
    """How a system parameter's new value reaches a trial."""

    LIVE = "live"  # at an epoch boundary, in the running job
    RESTART = "restart"  # a new process, continuing from the trial's checkpoint


class SettingSource(enum.StrEnum):
    """Where a trial's chosen system setting came from (summary.json `system.source`)."""

    DEFAULT = "default"
    PROBED = "probed"
    SEARCHED = "searched"
    RECOGNIZED = "recognized"
    ORACLE = "oracle"


@dataclass(frozen=True)
class SystemSetting:
    """One assignment of every system parameter, in config order."""

    items: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> SystemSetting:
        return cls(tuple((k, str(v)) for k, v in values.items()))

    @classmethod
    def parse(cls, label: str) -> SystemSetting:
        """Inverse of `label()`: 'cores=2,memory=2g' → the setting (empty text: no parameters)."""
        if not label:
            return cls(())
        pairs = [part.split("=", 1) for part in label.split(",")]
        if any(len(pair) != 2 or not pair[0] for pair in pairs):
            raise ValueError(f"not a setting label ('name=value,...'): {label!r}")
        return cls(tuple((k, v) for k, v in pairs))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)

    def get(self, name: str) -> str | None:
        return self.as_dict().get(name)

    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.items)

    def differing(self, other: SystemSetting) -> set[str]:
        """Names of the parameters whose values differ between the two settings."""
        mine, theirs = self.as_dict(), other.as_dict()
        return {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}

    def __str__(self) -> str:
        return self.label()


@dataclass(frozen=True)
class Energy:
    """Energy over a window, always with the meter it came from."""

    joules: float
    source: str  # rapl | pdu | pcm | nvml | estimate | none

    def __add__(self, other: Energy) -> Energy:
        if self.source == other.source or other.source == "none":
            return Energy(self.joules + other.joules, self.source)
        if self.source == "none":
            return other
        return Energy(self.joules + other.joules, "mixed")

    def __sub__(self, other: Energy) -> Energy:
        """What is left of a window after a part of it (never below zero)."""
        return Energy(max(0.0, self.joules - other.joules), self.source)

    @staticmethod
    def zero() -> Energy:
        return Energy(0.0, "none")


@dataclass(frozen=True)
class WindowReport:
    """A window of training iterations at one setting, inside an epoch (a window probe).

    `iteration_s` holds every iteration the app ran in it, in order; the first `warmup` of
    them were trained but are not part of the measurement (a new setting's first iterations
    pay for re-cloned model replicas). `energy` is the meter's over the whole window."""

    epoch: int  # the epoch it ran in (the last one, if it ran over an epoch's end)
    iteration_s: tuple[float, ...]
    warmup: int
    epoch_iterations: int  # iterations in a whole epoch
    energy: Energy
    system: dict[str, Any] = field(default_factory=dict)

    @property
    def measured_s(self) -> tuple[float, ...]:
        return self.iteration_s[self.warmup :]


@dataclass(frozen=True)
class EpochReport:
    """One epoch as the app reported it, plus the energy the backend measured for its window."""

    epoch: int
    duration_s: float
    eval_s: float
    loss: float | None
    accuracy: float
    samples: int
    echoed: dict[str, Any]
    energy: Energy
    # The epoch's training time at the pace of its second half (median iteration time ×
    # iterations), when the app reports iteration times: what it costs once warm. A process's
    # first iterations pay JIT warm-up, so settings are compared on this (probing/warmup.py).
    steady_s: float | None = None
    # What the app says is in force (e.g. {"cores": 2, "cpus": [0, 1]}), checked on arrival.
    system: dict[str, Any] = field(default_factory=dict)
    iterations: int = 0  # training iterations in the epoch (0: not reported)
    # The spread (standard deviation) of the log iteration times over the epoch's second
    # half: the noise a window of iterations will see, to size the first one.
    iteration_spread: float | None = None

    @property
    def wall_s(self) -> float:
        return self.duration_s + self.eval_s


@dataclass(frozen=True)
class SegmentRequest:
    """Run `epochs` epochs of one trial under one setting, continuing from `checkpoint_dir`."""

    trial_id: str
    setting: SystemSetting
    epochs: int
    role: Role
    hyperparameters: dict[str, Any]
    checkpoint_dir: str
    log_path: str
    profile: bool = False  # profile the first epoch (counters over its window)
    # Pause after this many epochs (0: never) and ask the tuner for a `Decision`: go on in the
    # same process (at this setting or another one reachable live), or save and stop.
    decide_after: int = 0
    # The setting the process is launched with, when it differs from `setting`: the widest
    # value of each live parameter, so that every later live value fits inside it.
    launch: SystemSetting | None = None

    @property
    def launched_as(self) -> SystemSetting:
        return self.launch or self.setting


@dataclass(frozen=True)
class Pause:
    """A running segment at an epoch boundary, waiting for a `Decision`."""

    setting: SystemSetting  # in force during `epochs`
    role: Role
    epochs: tuple[EpochReport, ...]  # since the previous boundary
    wall_s: float  # since the previous boundary (the first one: since launch, start-up included)
    energy: Energy  # over the same window
    profile: dict[str, Any] | None = None
    window: WindowReport | None = None  # when it paused after a window of iterations


@dataclass(frozen=True)
class Decision:
    """The tuner's answer at a pause: stop (`setting` None), or go on at `setting`."""

    setting: SystemSetting | None
    role: Role = Role.TRAIN
    pause_after: int = 0  # epochs until the next pause (0: none)
    why: str = ""
    # Pause after this many iterations instead (a window probe; 0: by `pause_after`), the
    # first `warmup` of them not measured.
    iterations: int = 0
    warmup: int = 0

    @property
    def go_on(self) -> bool:
        return self.setting is not None


@dataclass(frozen=True)
class Stint:
    """Consecutive epochs of one process under one setting: a segment has one or more."""

    setting: SystemSetting
    role: Role
    epochs: tuple[EpochReport, ...]
    wall_s: float  # the first stint includes the start-up; a later one its live switch
    energy: Energy
    profile: dict[str, Any] | None = None
    switch_s: float = 0.0  # the live switch before it: decision, re-pinning, app applying it
    error: str | None = None  # its setting could not be applied (the process then stopped)
    window: WindowReport | None = None

    @property
    def startup_s(self) -> float:
        return max(0.0, self.wall_s - sum(e.wall_s for e in self.epochs))


PowerSample = tuple[float, float, str]  # (unix time, watts, source)


@dataclass(frozen=True)
class SegmentResult:
    """What a finished segment (one process) cost and produced, stint by stint."""

    stints: tuple[Stint, ...]
    app_id: str = ""
    # segments its process had run before it (backends/job.py): 0 for a fresh process
    reused: int = 0
    # the process's start-up by phase, in s (backends/startup.py)
    startup_phases: dict[str, float] = field(default_factory=dict)
    # the process's power samples, for the store: (unix time, watts, source)
    power: tuple[PowerSample, ...] = ()
    # what the record keeps beside the figures, never fatal: a profile that failed
    # (`profile_error`), windows a meter could not cover (`energy_fallbacks`)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> list[EpochReport]:
        return [e for s in self.stints for e in s.epochs]

    @property
    def wall_s(self) -> float:
        return sum(s.wall_s for s in self.stints)

    @property
    def energy(self) -> Energy:
        total = Energy.zero()
        for stint in self.stints:
            total = total + stint.energy
        return total

    @property
    def startup_s(self) -> float:
        """Everything that is not an epoch: JVM, Spark, data loading, checkpoint save."""
        return max(0.0, self.wall_s - sum(e.wall_s for e in self.epochs))


@dataclass(frozen=True)
class SegmentRecord:
    """A segment the tuner ran (or tried to run) for a trial, as kept in the journal."""

    index: int
    setting: SystemSetting
    role: Role
    epochs: tuple[EpochReport, ...]
    wall_s: float
    energy: Energy
    error: str | None = None
    profile: dict[str, Any] | None = None  # JobProfile.to_dict() of its first epoch
    # Which process of the trial ran it (1, 2, ...): records of one process followed each
    # other without a restart. 0: not known (journals written before processes were counted).
    process: int = 0
    switch_s: float = 0.0  # the live switch that started it (pause to decision answered)
    window: WindowReport | None = None  # a window probe's iterations (no whole epoch)
    # its process's start-up by phase, in s (backends/startup.py), on a process's first record
    phases: dict[str, float] = field(default_factory=dict)
    # on a process's first record: the segments that process had run before (of this trial or
    # earlier ones) when it took this one over; 0 for a fresh process
    reused: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def startup_s(self) -> float:
        return max(0.0, self.wall_s - sum(e.wall_s for e in self.epochs))
