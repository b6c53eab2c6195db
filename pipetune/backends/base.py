"""The backend interface, and the segment lifecycle every backend shares (template method).

The tuner calls `run_segment` once per segment, `stop` on Ctrl-C and `close` at the end of
the run. `run_segment` is the same for every backend: start the segment's job, follow its
events under a watchdog, turn them into stints (backends/lifecycle.py), and let the job go,
killed whenever anything goes wrong. A backend supplies the job (`_start`: a process
launched or reused, or a recorded one), how its stints are measured (`_meter`) and what
happens to it after its segment (`_finished`); the job supplies its events, the placement
of a live setting, the answer at a pause, and a kill.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pipetune import contract
from pipetune.backends.lifecycle import SegmentRun
from pipetune.backends.meter import SegmentMeter
from pipetune.contract import EventError
from pipetune.errors import AppContractError, SegmentFailed
from pipetune.records import (
    Decision,
    EpochReport,
    Pause,
    Role,
    SegmentRequest,
    SegmentResult,
    SystemSetting,
)

# each epoch as it finishes, with the setting and role of the stint it belongs to
EpochCallback = Callable[[EpochReport, SystemSetting, Role], None]
# at a pause: stop there (Decision.setting None) or go on, at this or another live setting
DecideCallback = Callable[[Pause], Decision]


class Job(ABC):
    """A segment's job as the lifecycle drives it: the app's side of pipetune/contract.py.

    One per segment; a process may run several (reuse), a trace stands in for one (replay).
    """

    command = "the job"  # names it in errors: "<command> exited with status 1"
    app_id = ""  # the application's id, from its `start` event
    reused = 0  # segments its process ran before this one
    # hyperparameter → the flag the app echoes it under (none: under its own name)
    flags: Mapping[str, str] = MappingProxyType({})

    @abstractmethod
    def events(self) -> Iterator[dict[str, Any]]:
        """The app's events, in order, until it ends (or goes idle, waiting for another)."""

    @abstractmethod
    def place(self, setting: SystemSetting, initial: bool) -> None:
        """Put the operating system's part of a live setting in force (the CPUs of the job's
        processes), before the app is told its part; raises PlacementError or OSError when
        it cannot be. `initial`: the pause right after start, at the segment's setting."""

    @abstractmethod
    def answer(self, decision: contract.Decision) -> None:
        """Give the paused app its decision."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the job now, with everything it started."""

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        """The live values the app applies itself at `setting` (contract.Decision.live)."""
        return {}

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        """What the app must say is in force once `setting` is placed (its `system`)."""
        return {}

    def wait(self) -> int:
        """Its exit status, once its events are over."""
        return 0

    def release(self) -> None:  # noqa: B027 - optional: nothing placed by default
        """Undo its placements: the segment is over."""

    def tail(self) -> str:
        """Its last lines of output, for the error of a failed segment."""
        return ""


JobT = TypeVar("JobT", bound=Job)


class Backend(ABC, Generic[JobT]):
    """Runs segments. Called by the tuner once per segment, sequentially."""

    timeout_s: float | None = None  # a segment's limit (None: none, nothing can hang)

    def __init__(self) -> None:
        self._running: JobT | None = None

    def run_segment(
        self,
        request: SegmentRequest,
        on_epoch: EpochCallback,
        decide: DecideCallback | None = None,
    ) -> SegmentResult:
        """Train `request.epochs` epochs from `request.checkpoint_dir` under `request.setting`.

        Launches at `request.launched_as` and puts `request.setting` in force before the first
        epoch. Calls `on_epoch` as each epoch finishes. With `request.decide_after` = k (0 < k
        < epochs), pauses after k epochs and calls `decide` (none: go on): a `Decision` to stop
        there (saved), or to go on, maybe at another setting reachable live, pausing again
        after its `pause_after` epochs. Each run of epochs at one setting is a `Stint` of the
        result. Raises `SegmentFailed` when the segment does not finish cleanly; the
        checkpoint is then left as it was before the segment.
        """
        job = self._start(request)
        launched_at = time.time()  # the app's launch phase is measured from here
        run = SegmentRun(request, job, self._meter(job, request), on_epoch, decide, launched_at)
        self._running = job
        watchdog = Watchdog(self.timeout_s, job.kill)
        try:
            for event in job.events():
                run.handle(event)
                if run.idle:
                    break  # its segment is done; the process waits for the next one
            status = 0 if run.idle else job.wait()
        except EventError as exc:
            job.kill()
            raise AppContractError(str(exc), job.tail()) from None
        except BaseException:
            job.kill()  # Ctrl-C or a contract error: never leave a process behind
            raise
        finally:
            watchdog.cancel()
            run.close()
            job.release()
            self._running = None
            self._finished(job, run.idle and not watchdog.fired, run.ended)
        if watchdog.fired:
            raise SegmentFailed(f"timed out after {self.timeout_s:g} s", job.tail())
        if status != 0 or not run.ended:
            raise SegmentFailed(f"{job.command} exited with status {status}", job.tail())
        return run.result(job.tail())

    def stop(self) -> None:
        """Stop whatever is running (Ctrl-C)."""
        job = self._running
        if job is not None:
            job.kill()

    def close(self) -> None:
        """Let go of what is kept between segments (an idle process); the run is over."""

    @abstractmethod
    def _start(self, request: SegmentRequest) -> JobT:
        """The segment's job, started: a process launched for it, or an idle one handed it."""

    @abstractmethod
    def _meter(self, job: JobT, request: SegmentRequest) -> SegmentMeter:
        """How the job's stints are measured (backends/meter.py)."""

    def _finished(self, job: JobT, idle: bool, ended: bool) -> None:
        """After the segment: `idle`, its process waits for another one (keep it or retire
        it); else it has ended, or was killed. `ended`: the app said it saved and ended."""


class Watchdog:
    """Kills a job that runs past its time limit (none: never)."""

    def __init__(self, timeout_s: float | None, kill: Callable[[], None]) -> None:
        self.fired = False
        self._kill = kill
        self._timer: threading.Timer | None = None
        if timeout_s is not None:
            self._timer = threading.Timer(timeout_s, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._kill()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
