"""The tuner's reading of an app's events (the wire format is in pipetune/contract.py).

[pipetune] {"event": "start", "app_id": ..., "start_epoch": 0, ...}
[pipetune] {"event": "epoch", "epoch": 3, "duration_s": ..., "accuracy": ..., ...}
[pipetune] {"event": "end", "epochs_done": 3, "checkpoint": ...}
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from pipetune.contract import EventError
from pipetune.records import Energy, EpochReport, WindowReport


def epoch_report(event: dict[str, Any], energy: Energy) -> EpochReport:
    """Validate an "epoch" event and attach the energy measured over its window."""
    try:
        epoch = int(event["epoch"])
        duration = float(event["duration_s"])
        accuracy = float(event["accuracy"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(f"epoch event lacks a valid {exc}: {event}") from None
    if epoch < 1 or duration < 0 or not (0.0 <= accuracy <= 1.0):
        raise EventError(f"epoch event out of range: {event}")
    loss = event.get("loss")
    loss = float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else None
    echoed = event.get("hyperparameters")
    system = event.get("system")
    return EpochReport(
        epoch=epoch,
        duration_s=duration,
        eval_s=float(event.get("eval_s") or 0.0),
        loss=loss,
        accuracy=accuracy,
        samples=int(event.get("samples") or 0),
        echoed=dict(echoed) if isinstance(echoed, dict) else {},
        energy=energy,
        steady_s=steady_epoch_s(event.get("iteration_s")),
        system=dict(system) if isinstance(system, dict) else {},
        iterations=_count(event.get("iterations")),
        iteration_spread=log_spread(event.get("iteration_s")),
    )


def window_report(event: dict[str, Any], warmup: int, energy: Energy) -> WindowReport:
    """Validate a "window" event; `warmup` is how many of its first iterations the decision
    that asked for it did not mean to measure."""
    seconds = event.get("iteration_s")
    try:
        epoch = int(event["epoch"])
        per_epoch = int(event["epoch_iterations"])
        times = tuple(float(t) for t in seconds) if isinstance(seconds, list) else None
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(f"window event lacks a valid {exc}: {event}") from None
    if times is None or epoch < 1 or per_epoch < 1 or any(t <= 0 for t in times):
        raise EventError(f"window event out of range: {event}")
    system = event.get("system")
    return WindowReport(
        epoch=epoch,
        iteration_s=times,
        warmup=min(warmup, len(times)),
        epoch_iterations=per_epoch,
        energy=energy,
        system=dict(system) if isinstance(system, dict) else {},
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def steady_epoch_s(iteration_s: Any) -> float | None:
    """The epoch's training time at the pace of its second half: median iteration × count.

    The first iterations of a process (and of a new replica count) pay JIT compilation and
    cache warm-up; the median of the second half is what the setting costs once warm.
    None without at least 4 valid iteration times.
    """
    times = _iteration_times(iteration_s)
    return statistics.median(times[len(times) // 2 :]) * len(times) if times else None


def log_spread(iteration_s: Any) -> float | None:
    """The standard deviation of the log iteration times of the epoch's second half (None
    without at least 4 valid times)."""
    times = _iteration_times(iteration_s)
    return statistics.stdev(math.log(t) for t in times[len(times) // 2 :]) if times else None


def _iteration_times(iteration_s: Any) -> list[float]:
    """An event's iteration times, when there are at least 4 and every one is a time > 0."""
    if not isinstance(iteration_s, list):
        return []
    times = [float(t) for t in iteration_s if isinstance(t, (int, float)) and t > 0]
    return times if len(times) >= 4 and len(times) == len(iteration_s) else []


def echo_mismatches(
    sent: dict[str, Any], flags: Mapping[str, str], echoed: dict[str, Any]
) -> list[str]:
    """Values the app did not receive as sent (by the flag each one maps to)."""
    wrong = []
    for name, value in sent.items():
        flag = flags.get(name, name)
        got = echoed.get(flag)
        if not _same(value, got):
            wrong.append(f"{name} (--{flag}): sent {value!r}, app echoed {got!r}")
    return wrong


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return str(a) == str(b)
