"""The signal-safe loop of the node-side daemons: a step at a fixed rate until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger("monitoring")


@dataclass
class StopSignals:
    """While entered, SIGTERM and SIGINT ask to stop instead of killing the process.

    The first one sets `event`; a second one (an impatient Ctrl-C) gets the signal's default
    action, so a stuck step can still be interrupted.
    """

    event: threading.Event = field(default_factory=threading.Event)
    received: str | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signal.Signals(signum).name
        self.event.set()


@dataclass(frozen=True)
class LoopOutcome:
    steps: int
    failures: int  # steps that raised
    stopped_by: str  # "SIGTERM", "SIGINT", "once" or "finished"


def run_until_signalled(
    step: Callable[[], bool | None],
    interval: float,
    *,
    once: bool = False,
    signals: StopSignals | None = None,
    debug: bool = False,
) -> LoopOutcome:
    """Call `step()` at the end of every `interval` seconds until SIGTERM or SIGINT.

    A signal never interrupts a step: the step in progress finishes, then this returns. Steps
    keep a fixed rate; when a step overruns, the ticks it missed are dropped (with a warning),
    so the next step's interval is longer (collectors' windows are contiguous). A step that
    raises is logged and the loop goes on (a collector must outlive a PDU reboot); a step that
    returns False ends the loop. With `once`, one step is taken.
    """
    if signals is None:
        with StopSignals() as own:
            return run_until_signalled(step, interval, once=once, signals=own, debug=debug)
    steps = failures = 0
    next_at = time.monotonic() + interval
    while not signals.event.wait(max(0.0, next_at - time.monotonic())):
        steps += 1
        try:
            more = step()
        except Exception as exc:  # the loop must survive; the log says what went wrong
            failures += 1
            log.warning("interval %d failed: %s", steps, exc, exc_info=debug)
            more = True
        if once:
            return LoopOutcome(steps, failures, "once")
        if more is False:
            return LoopOutcome(steps, failures, "finished")
        next_at += interval
        late = time.monotonic() - next_at
        if late > 0:
            skipped = math.ceil(late / interval)
            next_at += skipped * interval
            log.warning(
                "interval %d overran by %d tick(s): the next point covers them too", steps, skipped
            )
    return LoopOutcome(steps, failures, signals.received or "signal")
