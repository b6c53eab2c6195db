"""A run directory, read for a report: summary.json checked, the journal as typed events with
the time each was journaled, and the run state folded from them.

Every problem is a `RunDirError` of one line that names the file (and the journal line).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.errors import PipeTuneError, RunDirError
from pipetune.journal import JOURNAL_NAME, read_events
from pipetune.run_events import RunEvent, RunStarted, parse_event
from pipetune.run_state import RunState

SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class TimedEvent:
    time: float  # when it was journaled (Unix seconds)
    event: RunEvent


@dataclass(frozen=True)
class RunData:
    """What a report reads of one run."""

    path: Path
    summary: dict[str, Any]
    events: list[TimedEvent]
    state: RunState

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return list(self.summary["trials"])


def load_run(path: Path) -> RunData:
    """The run at `path`; `RunDirError` when it is not one, or its files are corrupt."""
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory")
    journal = path / JOURNAL_NAME
    if not journal.is_file():
        raise RunDirError(f"{path} is not a PipeTune run directory: it has no {JOURNAL_NAME}")
    events, state = read_journal(journal)
    return RunData(path, read_summary(path / SUMMARY_NAME), events, state)


def read_journal(path: Path) -> tuple[list[TimedEvent], RunState]:
    """Every event with its time, and the state they fold into (as `--resume` folds it)."""
    try:
        raw = read_events(path)
    except PipeTuneError as exc:
        raise RunDirError(_one_line(str(exc))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot be read ({_one_line(str(exc))})") from None
    state = RunState()
    events = []
    for number, entry in enumerate(raw, 1):  # read_events keeps every line but a torn last one
        kind = entry.get("type", "?") if isinstance(entry, dict) else "?"
        try:
            timed = _timed_event(entry)
            state.apply(timed.event)
        except (PipeTuneError, KeyError, TypeError, ValueError, AttributeError) as exc:
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            raise RunDirError(
                f"{path}:{number}: corrupt journal: a {kind!r} event that cannot be read "
                f"({_one_line(why)})"
            ) from None
        events.append(timed)
    if not events or not isinstance(events[0].event, RunStarted):
        raise RunDirError(f"{path}: corrupt journal: it does not begin with a run_started event")
    return events, state


def _timed_event(entry: Any) -> TimedEvent:
    if not isinstance(entry, dict):
        raise TypeError(f"a line is {type(entry).__name__}, not a JSON object")
    when = entry.get("time")
    if not isinstance(when, int | float) or isinstance(when, bool):
        raise ValueError(f"no time, or not a number: {when!r}")
    return TimedEvent(float(when), parse_event(entry))


def read_summary(path: Path) -> dict[str, Any]:
    """summary.json, checked for what a report reads."""
    if not path.is_file():
        raise RunDirError(f"{path}: missing (the run stopped before its first trial ended?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: corrupt: not JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot be read ({_one_line(str(exc))})") from None
    problems = summary_problems(data)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RunDirError(f"{path}: corrupt: {_one_line(problems[0])}{more}")
    return dict(data)


Expect = tuple[str, Callable[[Any], bool]]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


TEXT: Expect = ("text", lambda v: isinstance(v, str))
NUMBER: Expect = ("a number or null", lambda v: v is None or _is_number(v))
OBJECT: Expect = ("an object", lambda v: isinstance(v, dict))
OBJECT_OR_NULL: Expect = ("an object or null", lambda v: v is None or isinstance(v, dict))
LIST: Expect = ("a list", lambda v: isinstance(v, list))
ENERGY = {"joules": NUMBER, "source": TEXT}
# what the report reads of summary.json (results.run_summary / trial_summary write it)
TRIAL = {
    "id": TEXT,
    "status": TEXT,
    "hyperparameters": OBJECT,
    "accuracy": NUMBER,
    "system": {"chosen": OBJECT_OR_NULL, "source": TEXT, "probes": LIST},
    "time": {"total_s": NUMBER},
    "energy": ENERGY,
}
SUMMARY = {
    "run_id": TEXT,
    "mode": TEXT,
    "status": TEXT,
    "trials": LIST,
    "best": OBJECT_OR_NULL,
    "totals": {"time_s": NUMBER, "energy": ENERGY},
}


def summary_problems(data: Any) -> list[str]:
    """What is missing or of the wrong type, each named by its path in the file."""
    problems = _problems(data, SUMMARY, "")
    if not problems:
        for i, trial in enumerate(data["trials"]):
            problems += _problems(trial, TRIAL, f"trials[{i}]")
    return problems


def _problems(value: Any, spec: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where or 'the file'}: expected an object, found {_show(value)}"]
    out = []
    for key, want in spec.items():
        path = f"{where}.{key}" if where else key
        if key not in value:
            out.append(f"{path} is missing")
        elif isinstance(want, dict):
            out += _problems(value[key], want, path)
        elif not want[1](value[key]):
            out.append(f"{path}: expected {want[0]}, found {_show(value[key])}")
    return out


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())
