"""Power meters: the common interface and the background-sampling template.

A meter measures energy over time windows that have already closed. The tuner checks
`availability()` once, calls `start()` before the first segment, asks `energy(start, end)` for
each epoch or segment window (unix seconds from `time.time()`), and calls `stop()` at the end.
Each probe lives in its own module (`rapl`, `pdu`, `pcm`, `nvml`), listed by name in `meters`;
the arithmetic they share is in `integrate`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from pipetune.errors import PipeTuneError
from pipetune.records import Energy
from pipetune.telemetry.integrate import (
    CounterReset,
    WindowNotCovered,
    counter_delta,
    counter_energy,
    integrate_power,
)


@dataclass(frozen=True)
class Availability:
    """Whether a meter can measure on this machine; if not, why, and the fix when there is one."""

    ok: bool
    reason: str = ""


class MeterUnavailable(PipeTuneError):
    """A meter cannot measure (at all, or over the window asked); the message says why."""


class PowerMeter(ABC):
    """One source of energy measurements (one implementation per module)."""

    source: ClassVar[str]  # "rapl" | "pdu" | "pcm" | "nvml": the `Energy.source` it reports

    @abstractmethod
    def availability(self) -> Availability:
        """Cheap check, called before `start()`; never raises."""

    @abstractmethod
    def start(self) -> None:
        """Begin background sampling (a daemon thread). Idempotent."""

    @abstractmethod
    def stop(self) -> None:
        """Stop sampling and join the thread. Data already taken stays queryable."""

    @abstractmethod
    def energy(self, start: float, end: float) -> Energy:
        """Joules over `[start, end]` (unix seconds), summed over every node or domain covered.

        Raises:
            MeterUnavailable: no data covers the window; the message says what is missing.
        """

    @abstractmethod
    def describe(self) -> str:
        """One line for run summaries, e.g. `rapl: package-0 + dram (2 domains) from ...`."""


class SampledMeter(PowerMeter):
    """Template for meters that read in the background.

    A daemon thread calls `poll()` every `interval_s`. `energy()` first polls until the data
    reaches the window's end (at most `settle_s`, for sources that lag, like a file another
    program writes), then asks `_joules()`. Subclasses fill `_poll`, `_covers` and `_joules`;
    all three run under one lock, so they may share state freely.
    """

    settle_s: float = 0.0
    join_timeout_s: float = 10.0

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def start(self) -> None:
        """Take a first reading now, then sample every `interval_s` in a daemon thread.

        Raises:
            MeterUnavailable: the first reading failed (the thread is not started).
        """
        if self._thread is not None:
            return
        self.poll()
        self._stopping = threading.Event()  # a fresh one: a thread that outlived stop() ends
        self._thread = threading.Thread(
            target=self._run,
            args=(self._stopping,),
            name=f"pipetune-meter-{self.source}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=self.join_timeout_s)

    def poll(self) -> None:
        """Take one reading now (the sampling thread calls this every `interval_s`).

        Raises:
            MeterUnavailable: the reading failed.
        """
        with self._lock:
            self._poll()

    def energy(self, start: float, end: float) -> Energy:
        if not end >= start:
            raise ValueError(f"window ends ({end}) before it starts ({start})")
        self._catch_up(end)
        try:
            with self._lock:
                joules = self._joules(start, end)
        except MeterUnavailable as exc:
            if self._last_error:
                raise MeterUnavailable(f"{exc}; last reading failed: {self._last_error}") from exc
            raise
        return Energy(joules, self.source)

    @abstractmethod
    def _poll(self) -> None:
        """Read the source once and store the reading; raise MeterUnavailable on failure."""

    @abstractmethod
    def _covers(self, end: float) -> bool:
        """Whether the stored readings reach `end`."""

    @abstractmethod
    def _joules(self, start: float, end: float) -> float:
        """Joules over the window from the stored readings.

        Raises:
            MeterUnavailable: the readings do not cover the window.
        """

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.interval_s):
            self._poll_quietly()

    def _poll_quietly(self) -> None:
        try:
            self.poll()
        except Exception as exc:  # the sampling thread must survive; energy() reports it
            self._last_error = str(exc) if isinstance(exc, MeterUnavailable) else repr(exc)
        else:
            self._last_error = ""

    def _catch_up(self, end: float) -> None:
        deadline = time.monotonic() + self.settle_s
        while True:
            with self._lock:
                if self._covers(end):
                    return
            self._poll_quietly()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with self._lock:
                    if self._covers(end):
                        return
                return
            time.sleep(min(self.interval_s, remaining))


class CounterTrack:
    """Joules since the first reading of one hardware energy counter, with the reading times.

    Raw readings go through `counter_delta` (wrap-around handled there, and only there) into a
    monotonic total, so a window spanning any number of wraps is right as long as readings are
    closer together than one wrap period.
    """

    def __init__(self, label: str, max_range: int | None, joules_per_unit: float) -> None:
        self.label = label
        self.max_range = max_range
        self.joules_per_unit = joules_per_unit
        self.times: list[float] = []
        self.totals: list[float] = []
        self._last_raw = 0
        self._resets: list[tuple[float, float]] = []  # (reading before, reading after)

    def add(self, at: float, raw: int) -> None:
        """Record a raw counter reading taken at `at`; out-of-order readings are dropped."""
        if not self.times:
            self.times.append(at)
            self.totals.append(0.0)
            self._last_raw = raw
            return
        if at <= self.times[-1]:
            return
        try:
            delta = counter_delta(self._last_raw, raw, self.max_range)
        except CounterReset:
            self._resets.append((self.times[-1], at))
            delta = 0
        self.times.append(at)
        self.totals.append(self.totals[-1] + delta * self.joules_per_unit)
        self._last_raw = raw

    def covers(self, end: float) -> bool:
        return bool(self.times) and self.times[-1] >= end

    def joules(self, start: float, end: float) -> float:
        for before, after in self._resets:
            if before < end and after > start:
                raise MeterUnavailable(
                    f"{self.label}: the counter was reset between readings at {before:.3f} "
                    f"and {after:.3f}, inside the window"
                )
        try:
            return counter_energy(self.times, self.totals, start, end)
        except WindowNotCovered as exc:
            raise MeterUnavailable(f"{self.label}: {exc}") from exc


class PowerTrace:
    """Instantaneous power samples of one node, integrated over real timestamps."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.times: list[float] = []
        self.watts: list[float] = []

    def add(self, at: float, watts: float) -> None:
        """Record a power sample taken at `at`; out-of-order samples are dropped."""
        if self.times and at <= self.times[-1]:
            return
        self.times.append(at)
        self.watts.append(watts)

    def covers(self, end: float) -> bool:
        return bool(self.times) and self.times[-1] >= end

    def joules(self, start: float, end: float) -> float:
        try:
            return integrate_power(self.times, self.watts, start, end)
        except WindowNotCovered as exc:
            raise MeterUnavailable(f"{self.label}: {exc}") from exc


def first_available(meters: Iterable[PowerMeter]) -> PowerMeter:
    """The first meter that can measure here, in the order given.

    Raises:
        MeterUnavailable: none can; the message gives every meter's reason.
    """
    reasons: list[str] = []
    for meter in meters:
        availability = meter.availability()
        if availability.ok:
            return meter
        reasons.append(f"  - {meter.source}: {availability.reason}")
    raise MeterUnavailable("no power meter is available:\n" + "\n".join(reasons))
