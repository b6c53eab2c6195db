"""The app protocol, in one place: what a training app and the tuner say to each other.

Standard library only: an app imports it without the tuner (`from pipetune import contract`).

**Flags** after the app's own: `--epochs K --checkpoint DIR [--decisionFile F]`.

**Events**: one line per event on stdout, `[pipetune] {json}`, flushed at once:

    start   once the app is ready to train; optionally `startup` (when its Python started,
            its own start-up phases in seconds)
    pause   waiting for a decision in F: after `start`, then when the last decision said
    epoch   after each epoch: the hyperparameters as parsed, the setting in force (`system`)
    window  before the pause after a window of iterations: their seconds, the setting
    refused a decision's setting cannot be applied here; the app then saves and ends
    end     the checkpoint is saved (optionally `save_s`: how long saving it took)
    idle    after `end`, in a process the launcher may reuse
    error   a failure, with a message for the user

**Decisions** (`Decision`, written atomically to F by the launcher): go on or stop, the live
part of the setting to apply first (`{"cores": 1}`), and when to pause again: after
`iterations` (a window, which may end inside an epoch) or `pause_after` epochs.

**Reuse** (optional, `PIPETUNE_NEXT_FILE`): after `end` an app that said `"reuse": true`
emits `idle` and waits for a `Next`: the next segment's flags, or the word to exit.

**Checkpoint**: DIR holds `meta.json` written last, DIR swapped in with renames.
docs/APPS.md says each of these in full.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TAG = "[pipetune]"
META_FILE = "meta.json"

START, EPOCH, PAUSE, REFUSED, END, ERROR = "start", "epoch", "pause", "refused", "end", "error"
WINDOW, IDLE = "window", "idle"
NEXT_FILE_ENV = "PIPETUNE_NEXT_FILE"


class EventError(ValueError):
    """A tagged line that is not a valid event."""


# ----------------------------------------------------------------------------- events


def format_event(event: dict[str, Any]) -> str:
    """One tagged, compact JSON line. Non-finite floats (a diverged loss) become null, at any
    depth (JSON has no NaN)."""
    return f"{TAG} {json.dumps(_finite(event), separators=(',', ':'), allow_nan=False)}\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit(event: dict[str, Any], stream: IO[str] | None = None) -> None:
    """Write the event line and flush, so the launcher sees it at once."""
    out = stream or sys.stdout
    out.write(format_event(event))
    out.flush()


def parse_event(line: str) -> dict[str, Any] | None:
    """The event on this line, or None if the line is not tagged (ordinary log output)."""
    text = line.strip()
    if not text.startswith(TAG):
        return None
    payload = text[len(TAG) :].strip()
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise EventError(f"tagged line is not JSON ({exc.msg}): {payload[:120]}") from None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise EventError(f'tagged line has no "event" name: {payload[:120]}')
    return event


def start_event(
    app_id: str, start_epoch: int, hyperparameters: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "event": START,
        "app_id": app_id,
        "start_epoch": start_epoch,
        "hyperparameters": hyperparameters,
        **extra,
    }


def epoch_event(
    epoch: int,
    duration_s: float,
    accuracy: float,
    hyperparameters: dict[str, Any],
    *,
    eval_s: float = 0.0,
    loss: float | None = None,
    samples: int = 0,
    system: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`system`: what is in force (e.g. {"cores": 2, "cpus": [0, 1]}), checked by the tuner."""
    event = {
        "event": EPOCH,
        "epoch": epoch,
        "duration_s": round(duration_s, 4),
        "eval_s": round(eval_s, 4),
        "loss": loss,
        "accuracy": accuracy,
        "samples": samples,
        "hyperparameters": hyperparameters,
        **extra,
    }
    if system is not None:
        event["system"] = system
    return event


def window_event(
    epoch: int,
    iteration_s: list[float],
    *,
    epoch_iterations: int,
    system: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A window of iterations ended in `epoch` (the one in progress, counted from 1)."""
    event = {
        "event": WINDOW,
        "epoch": epoch,
        "iteration_s": [round(t, 5) for t in iteration_s],
        "epoch_iterations": epoch_iterations,
        **extra,
    }
    if system is not None:
        event["system"] = system
    return event


def pause_event(epoch: int, iteration: int = 0) -> dict[str, Any]:
    return {"event": PAUSE, "epoch": epoch, "iteration": iteration}


def refused_event(epoch: int, reason: str) -> dict[str, Any]:
    return {"event": REFUSED, "epoch": epoch, "reason": reason}


def end_event(epochs_done: int, checkpoint: str, **extra: Any) -> dict[str, Any]:
    return {"event": END, "epochs_done": epochs_done, "checkpoint": checkpoint, **extra}


def error_event(message: str) -> dict[str, Any]:
    return {"event": ERROR, "message": message}


def idle_event(segments: int) -> dict[str, Any]:
    """`segments`: how many this process has run (the next handover's `serial`)."""
    return {"event": IDLE, "segments": segments}


# -------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    """The launcher's answer at the pause after `epoch` epochs and `iteration` iterations (the
    start epoch and its iterations for the first one)."""

    epoch: int
    go_on: bool
    live: dict[str, Any] = field(default_factory=dict)  # live values to apply before going on
    pause_after: int = 0  # epochs until the next pause (0: none)
    iteration: int = 0
    iterations: int = 0  # pause after this many iterations instead (0: by `pause_after`)

    def to_json(self) -> str:
        return json.dumps(
            {
                "epoch": self.epoch,
                "iteration": self.iteration,
                "continue": self.go_on,
                "live": self.live,
                "pause_after": self.pause_after,
                "iterations": self.iterations,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Decision:
        raw = json.loads(text)
        if not isinstance(raw, dict) or not isinstance(raw.get("epoch"), int):
            raise ValueError(f"not a decision: {text[:120]}")
        live = raw.get("live") or {}
        counts = [raw.get(k) or 0 for k in ("pause_after", "iteration", "iterations")]
        if not isinstance(live, dict) or any(not isinstance(n, int) or n < 0 for n in counts):
            raise ValueError(f"not a decision: {text[:120]}")
        pause_after, iteration, iterations = counts
        return cls(
            raw["epoch"], bool(raw.get("continue")), live, pause_after, iteration, iterations
        )


def write_decision(path: Path, decision: Decision) -> None:
    """Atomically (temp file, then rename), so the polling app never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(decision.to_json())
    os.replace(tmp, path)


def read_decision(path: Path, epoch: int, iteration: int = 0) -> Decision | None:
    """The decision for the pause after `epoch` epochs and `iteration` iterations, or None if
    it is not there yet."""
    try:
        decision = Decision.from_json(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet (the launcher renames it into place)
    return decision if (decision.epoch, decision.iteration) == (epoch, iteration) else None


def await_decision(
    path: Path, epoch: int, timeout_s: float, poll_s: float = 0.01, iteration: int = 0
) -> Decision | None:
    """Emit a `pause` after `epoch` epochs (and `iteration` iterations in all) and wait for its
    decision; None when none came in time (the app should then save and stop: the launcher is
    gone or stuck)."""
    emit(pause_event(epoch, iteration))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        decision = read_decision(path, epoch, iteration)
        if decision is not None:
            return decision
        time.sleep(poll_s)
    return None


def process_started_at() -> float:
    """Unix time this process started (Linux: from /proc; elsewhere: now)."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as fh:
            boot = time.time() - float(fh.read().split()[0])  # to 10 ms; /proc/stat's btime: 1 s
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


# ------------------------------------------------------------------------------ reuse


@dataclass(frozen=True)
class Next:
    """The launcher's word to an idle process: run the segment these app flags describe, or
    exit (no flags). `serial` answers the `idle` of the process's `serial`-th segment."""

    serial: int
    argv: tuple[str, ...] = ()
    sent_at: float = 0.0  # unix time, for the start-up accounting of the handover

    @property
    def exit(self) -> bool:
        return not self.argv

    def to_json(self) -> str:
        return json.dumps({"serial": self.serial, "argv": list(self.argv), "sent_at": self.sent_at})

    @classmethod
    def from_json(cls, text: str) -> Next:
        raw = json.loads(text)
        argv = raw.get("argv") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or not isinstance(raw.get("serial"), int):
            raise ValueError(f"not a handover: {text[:120]}")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"not a handover: {text[:120]}")
        sent_at = raw.get("sent_at")
        return cls(raw["serial"], tuple(argv), float(sent_at) if sent_at else 0.0)


def next_file() -> Path | None:
    """Where this process's next segment will be named, when the launcher may reuse it."""
    value = os.environ.get(NEXT_FILE_ENV, "").strip()
    return Path(value) if value else None


def write_next(path: Path, handover: Next) -> None:
    """Atomically, as a decision."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(handover.to_json())
    os.replace(tmp, path)


def await_next(path: Path, serial: int, timeout_s: float, poll_s: float = 0.02) -> Next | None:
    """Emit `idle` after the process's `serial`-th segment and wait for the launcher's word;
    None when none came in time (the app should then exit: the launcher is gone or done)."""
    emit(idle_event(serial))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            handover = Next.from_json(path.read_text())
        except (OSError, ValueError):
            handover = None  # not written yet (the launcher renames it into place)
        if handover is not None and handover.serial == serial:
            return handover
        time.sleep(poll_s)
    return None


# ------------------------------------------------------------------------- checkpoint


def read_meta(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's metadata, None when there is no complete checkpoint."""
    try:
        meta = json.loads((checkpoint / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def checkpoint_epochs(checkpoint: Path) -> int:
    """Epochs a checkpoint holds (0 for none)."""
    meta = read_meta(checkpoint)
    return int(meta.get("epochs_done", 0)) if meta else 0


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """meta.json into a checkpoint being written (call last, before the directory swap)."""
    with open(directory / META_FILE, "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


# ------------------------------------------------------------------------------ flags


def standard_flags(
    epochs: int, checkpoint: str, decision_file: str | Path | None = None
) -> list[str]:
    """The flags the launcher appends to every app command line."""
    argv = ["--epochs", str(epochs), "--checkpoint", checkpoint]
    if decision_file:
        argv += ["--decisionFile", str(decision_file)]
    return argv


SEGMENT_FLAGS = ("--epochs", "--checkpoint", "--decisionFile", "--decisionTimeout")  # per segment


def next_segment_argv(launch_argv: list[str], handed_over: list[str]) -> list[str]:
    """The flags of a segment handed over (`Next`): the launch's less the standard ones, then
    the handover's, which win (argparse keeps the last). A launcher that sends only the
    segment's own flags would otherwise put the launch's extras back at their defaults."""
    kept, skip = [], False
    for arg in launch_argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in SEGMENT_FLAGS:
            skip = "=" not in arg  # `--flag value`: drop the value too
            continue
        kept.append(arg)
    return kept + list(handed_over)


def add_standard_flags(parser: argparse.ArgumentParser) -> None:
    """Declare the standard flags on an app's argument parser."""
    parser.add_argument(
        "--epochs", type=int, required=True, help="train exactly this many more epochs"
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (resume + save)")
    parser.add_argument(
        "--decisionFile",
        default="",
        help="pause after start (and when a decision says) and read decisions here",
    )
    parser.add_argument(
        "--decisionTimeout",
        type=float,
        default=300.0,
        help="seconds to wait for a decision; then save and stop",
    )
