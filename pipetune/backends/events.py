"""The app → tuner contract: one tagged JSON line per event on stdout, parsed by pure functions.

[pipetune] {"event": "start", "app_id": ..., "start_epoch": 0, ...}
[pipetune] {"event": "epoch", "epoch": 3, "duration_s": ..., "accuracy": ..., ...}
[pipetune] {"event": "end", "epochs_done": 3, "checkpoint": ...}
"""

from __future__ import annotations

import json
import math
from typing import Any

from pipetune.records import Energy, EpochReport

TAG = "[pipetune] "


class EventError(ValueError):
    """A tagged line that is not a valid event."""


def parse_event(line: str) -> dict[str, Any] | None:
    """The event on this line, or None if the line is not tagged (ordinary log output)."""
    text = line.strip()
    if not text.startswith(TAG.strip()):
        return None
    payload = text[len(TAG.strip()) :].strip()
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise EventError(f"tagged line is not JSON ({exc.msg}): {payload[:120]}") from None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise EventError(f'tagged line has no "event" name: {payload[:120]}')
    return event


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
    return EpochReport(
        epoch=epoch,
        duration_s=duration,
        eval_s=float(event.get("eval_s") or 0.0),
        loss=loss,
        accuracy=accuracy,
        samples=int(event.get("samples") or 0),
        echoed=dict(echoed) if isinstance(echoed, dict) else {},
        energy=energy,
    )


def echo_mismatches(
    sent: dict[str, Any], flags: dict[str, str], echoed: dict[str, Any]
) -> list[str]:
    """Hyperparameters the app did not receive as sent (by the flag each one maps to)."""
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
