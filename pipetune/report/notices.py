"""What a reader must know before the figures: the run was stopped, resumed, did not finish,
had failed trials, a trial restarted from scratch, or its energy is an estimate."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from pipetune.report.plotting import energy_caveat
from pipetune.report.run_dir import RunData
from pipetune.run_events import (
    RunFinished,
    RunInterrupted,
    RunResumed,
    SegmentRecorded,
    TrialDone,
    TrialRestarted,
)


class Level(enum.StrEnum):
    WARNING = "warning"  # the run's story is not the plain one: stops, failures
    INFO = "info"


@dataclass(frozen=True)
class Notice:
    level: Level
    text: str


def run_notices(run: RunData) -> list[Notice]:
    notices = _stops(run) + _trial_notices(run)
    source = run.summary["totals"]["energy"]["source"]
    caveat = energy_caveat(source)
    if caveat:
        meter = run.summary.get("energy_meter", "")
        notices.append(Notice(Level.INFO, f"The {caveat}. {meter}".strip()))
    return notices


def _stops(run: RunData) -> list[Notice]:
    """Stops and resumes, from the journal; how far summary.json goes."""
    resumed = [t.time for t in run.events if isinstance(t.event, RunResumed)]
    stopped = [t.time for t in run.events if isinstance(t.event, RunInterrupted)]
    finished = any(isinstance(t.event, RunFinished) for t in run.events)
    out = []
    if resumed:
        when = ", ".join(_clock(t) for t in resumed)
        out.append(
            Notice(
                Level.WARNING,
                f"This run was stopped and resumed {len(resumed)} time(s) (resumed at {when}; "
                f"{len(stopped)} clean stop(s) journaled). The timelines mark each stop and "
                "resume; finished trials were not re-run.",
            )
        )
    status = run.summary["status"]
    done = sum(1 for t in run.events if isinstance(t.event, TrialDone))
    summarised = sum(1 for t in run.summary["trials"] if t["status"] == "done")
    if status == "interrupted":
        out.append(
            Notice(
                Level.WARNING,
                "The run was stopped and has not been resumed since: "
                f"continue it with `pipetune --resume {run.path}`.",
            )
        )
    elif status == "running" and not finished:
        out.append(
            Notice(
                Level.WARNING,
                "The run did not finish: it was killed, or is still running. "
                "summary.json is as of its last finished trial.",
            )
        )
    if done > summarised:
        out.append(
            Notice(
                Level.WARNING,
                f"The journal has {done} finished trial(s), summary.json "
                f"{summarised}: the timelines show all, the tables what summary.json holds.",
            )
        )
    return out


def _trial_notices(run: RunData) -> list[Notice]:
    logs = {  # each trial's last failed segment's log, where the app's own error is
        t.event.trial: str(t.event.notes["log"])
        for t in run.events
        if isinstance(t.event, SegmentRecorded)
        and not t.event.segment.ok
        and "log" in t.event.notes
    }
    out = []
    for t in run.summary["trials"]:
        if t["status"] == "failed":
            error = t.get("error") or "no error recorded"
            log = f" (log: {logs[t['id']]})" if t["id"] in logs else ""
            out.append(Notice(Level.WARNING, f"Trial {t['id']} failed: {error}{log}"))
    for timed in run.events:
        if isinstance(timed.event, TrialRestarted):
            e = timed.event
            out.append(
                Notice(
                    Level.WARNING,
                    f"Trial {e.trial} was restarted from scratch on resume "
                    f"({e.reason}); its earlier segments are drawn faded.",
                )
            )
    return out


def _clock(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
