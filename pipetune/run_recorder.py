"""The run recorder: one `record(event)` that journals an event, folds it into the run's
state, then tells the listeners (the metrics store, the progress display).

Journal first: a fact is on disk before anything acts on it, so a run killed at any point is
continued by `--resume` from the journal alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pipetune.journal import Journal
from pipetune.progress import Progress
from pipetune.records import SystemSetting
from pipetune.run_events import (
    DecisionMade,
    Epoch,
    Recognition,
    RunEvent,
    SegmentRecorded,
    SegmentStarted,
    Switch,
)
from pipetune.run_state import RunState
from pipetune.store import schema
from pipetune.store.base import Store


class Listener(Protocol):
    def on_event(self, event: RunEvent, state: RunState) -> None: ...


class RunRecorder:
    def __init__(self, journal_path: Path, state: RunState, durable: bool = True) -> None:
        self.state = state
        self.listeners: list[Listener] = []
        self._journal = Journal(journal_path, durable)

    def record(self, event: RunEvent) -> None:
        self._journal.append(event.kind, **event.fields())
        self.state.apply(event)
        for listener in self.listeners:
            listener.on_event(event, self.state)

    def close(self) -> None:
        self._journal.close()


class StoreFeed:
    """Each recorded segment's epochs, profile and power as points in the metrics store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def on_event(self, event: RunEvent, state: RunState) -> None:
        if isinstance(event, SegmentRecorded):
            power = list(event.power)
            self.store.write(schema.segment_points(state.run_id, event.trial, event.segment, power))


class ProgressFeed:
    """The progress lines the events make: segments, epochs, switches, recognition, failures."""

    def __init__(self, progress: Progress, total_epochs: int) -> None:
        self.progress = progress
        self.total_epochs = total_epochs
        self._show: dict[type[RunEvent], Callable[[Any, RunState], None]] = {
            SegmentStarted: self._segment_started,
            Epoch: self._epoch,
            SegmentRecorded: self._segment_recorded,
            Switch: self._switch,
            Recognition: self._recognition,
            DecisionMade: self._decision,
        }

    def on_event(self, event: RunEvent, state: RunState) -> None:
        show = self._show.get(type(event))
        if show is not None:
            show(event, state)

    def _segment_started(self, e: SegmentStarted, state: RunState) -> None:
        self.progress.segment_started(e.setting, e.role, e.first_epoch, e.epochs)

    def _epoch(self, e: Epoch, state: RunState) -> None:
        total = self.total_epochs
        self.progress.epoch(e.setting, e.role, e.epoch, total, e.duration_s, e.accuracy)

    def _segment_recorded(self, e: SegmentRecorded, state: RunState) -> None:
        if not e.segment.ok:
            log = f" (log: {e.notes['log']})" if "log" in e.notes else ""
            self.progress.segment_failed(e.segment.setting, (e.segment.error or "failed") + log)

    def _switch(self, e: Switch, state: RunState) -> None:
        because = f" ({e.why})" if e.why else ""
        where = f"inside epoch {e.epoch}" if e.inside_epoch else f"after epoch {e.epoch}"
        self.progress.note(f"{e.trial}: {e.before} → {e.after} {where}: {e.how}{because}")

    def _recognition(self, e: Recognition, state: RunState) -> None:
        r = e.result
        if r.get("hit"):
            self.progress.note(
                f"{e.trial}: recognised (cluster {r.get('cluster')}, distance "
                f"{r.get('distance', 0):.2f} ≤ {r.get('threshold', 0):.2f}): "
                f"{SystemSetting.of(r['setting']).label()}, no probes"
            )
        else:
            self.progress.note(f"{e.trial}: not recognised ({r.get('reason')}); probing")

    def _decision(self, e: DecisionMade, state: RunState) -> None:
        if e.go_on and e.to is not None:
            self.progress.going_on(e.to, e.role, window=e.iterations > 0)
        if e.go_on and e.to == e.at:  # a change of setting is shown by its Switch
            self.progress.note(f"{e.trial}: {e.why}")
