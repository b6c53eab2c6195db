"""Where each trial's time went, as bars over wall time: pure, from the journal's events.

A process's stints are journaled together when it ends, so a stint is placed after the one
before it in the same process (from its `segment_started`), each `wall_s` long. Within a stint
the time outside its epochs comes first on a process's first stint (its start-up, up to the
app's own save and teardown, which come last) and is the live switch on a later one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pipetune.records import Role, SegmentRecord
from pipetune.report.run_dir import TimedEvent
from pipetune.run_events import (
    RunInterrupted,
    RunResumed,
    SegmentRecorded,
    SegmentStarted,
    TrialDone,
    TrialFailed,
    TrialRestarted,
    TrialStarted,
)

END_PHASES = ("save", "teardown")  # start-up phases that come after a process's epochs
LONG_GAP_S = 30.0  # a pause this long inside a trial is a stop and resume: it is cut short
KEPT_GAP_S = 2.0
MIN_BAR_S = 1e-3  # a switch or an end shorter than this is not drawn


class BarKind(enum.StrEnum):
    STARTUP = "start-up"
    SWITCH = "live switch"
    WARMUP = "warm-up epoch"
    PROBE = "probe epoch"
    WINDOW = "probe window"
    EPOCH = "training epoch"
    END = "save, teardown, pauses"
    FAILED = "failed"


class MarkKind(enum.StrEnum):
    LIVE = "live switch"
    RESTART = "restart"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    RESUMED = "resumed"
    TRIAL_RESTARTED = "trial restarted"


EPOCH_KIND = {Role.WARMUP: BarKind.WARMUP, Role.PROBE: BarKind.PROBE, Role.TRAIN: BarKind.EPOCH}


@dataclass(frozen=True)
class Bar:
    lane: str  # the process that ran it
    start_s: float  # since the trial started
    width_s: float
    kind: BarKind
    setting: str  # its system setting's label
    text: str = ""  # "e2" for epoch 2, "w2" for a window inside epoch 2
    discarded: bool = False  # thrown away: the trial was restarted from scratch after it

    @property
    def end_s(self) -> float:
        return self.start_s + self.width_s


@dataclass(frozen=True)
class Mark:
    at_s: float
    kind: MarkKind
    text: str


@dataclass
class TrialTimeline:
    trial: str
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    cut_s: float = 0.0  # idle time cut out (a stop until its resume)

    @property
    def lanes(self) -> list[str]:
        return list(dict.fromkeys(bar.lane for bar in self.bars))

    @property
    def end_s(self) -> float:
        ends = [b.end_s for b in self.bars] + [m.at_s for m in self.marks]
        return max(ends, default=0.0)


def trial_timelines(events: list[TimedEvent]) -> list[TrialTimeline]:
    """One timeline per trial, in the order the trials started."""
    builders: dict[str, _Builder] = {}
    stops: list[tuple[float, MarkKind]] = []
    for timed in events:
        e, when = timed.event, timed.time
        if isinstance(e, TrialStarted):
            builders[e.trial] = _Builder(e.trial, when)
        elif isinstance(e, RunResumed | RunInterrupted):
            kind = MarkKind.RESUMED if isinstance(e, RunResumed) else MarkKind.INTERRUPTED
            stops.append((when, kind))
        elif (trial := getattr(e, "trial", None)) in builders:
            builders[trial].take(e, when)
    timelines = []
    for builder in builders.values():
        builder.stops(stops)
        timelines.append(cut_long_gaps(builder.timeline))
    return timelines


class _Builder:
    """Places one trial's stints, process by process, as its events arrive."""

    def __init__(self, trial: str, started: float) -> None:
        self.t0 = started
        self.timeline = TrialTimeline(trial)
        self.ended: float | None = None
        self._cursor: dict[int, float] = {}  # process → where its next stint starts
        self._fresh: set[int] = set()  # processes whose first stint is still to come
        self._reach = 0.0  # the end of the last stint placed
        self._previous: SegmentRecord | None = None  # the last stint that ran
        # (process, epoch) → seconds of that epoch spent in windows already
        self._windows: dict[tuple[int, int], float] = {}

    def take(self, e: object, when: float) -> None:
        at = when - self.t0
        if isinstance(e, SegmentStarted):
            self._cursor[e.process] = at
            self._fresh.add(e.process)
        elif isinstance(e, SegmentRecorded):
            self._place(e.segment, at)
        elif isinstance(e, TrialRestarted):
            self._restarted(e.reason, at)
        elif isinstance(e, TrialDone | TrialFailed):
            self.ended = at
            failed_before = any(m.kind is MarkKind.FAILED for m in self.timeline.marks[-1:])
            if isinstance(e, TrialFailed) and not failed_before:
                self._mark(max(at, self._reach), MarkKind.FAILED, f"trial failed: {e.error}")

    def stops(self, stops: list[tuple[float, MarkKind]]) -> None:
        """Marks for the run's stops and resumes while this trial was under way."""
        for when, kind in stops:
            at = when - self.t0
            if at >= 0 and (self.ended is None or at <= self.ended):
                self._mark(at, kind, kind.value)

    def _place(self, seg: SegmentRecord, journaled_at: float) -> None:
        start = self._cursor.get(seg.process)
        fresh = start is None or seg.process in self._fresh
        if start is None:  # no segment_started for it: it ended when it was journaled
            start = max(journaled_at - seg.wall_s, self._reach)
        self._fresh.discard(seg.process)
        self._cursor[seg.process] = start + seg.wall_s
        self._reach = max(self._reach, start + seg.wall_s)
        lane = f"process {seg.process}" if seg.process else f"segment {seg.index}"
        spent = {n: s for (process, n), s in self._windows.items() if process == seg.process}
        bars = stint_bars(seg, start, fresh, lane, spent)
        self.timeline.bars += bars
        if seg.window is not None:
            key = (seg.process, seg.window.epoch)
            window_s = sum(b.width_s for b in bars if b.kind is BarKind.WINDOW)
            self._windows[key] = self._windows.get(key, 0.0) + window_s
        self._switch_mark(seg, start)
        if not seg.ok:
            self._mark(start + seg.wall_s, MarkKind.FAILED, f"{seg.setting}: {seg.error}")

    def _switch_mark(self, seg: SegmentRecord, start: float) -> None:
        before, self._previous = self._previous, (seg if seg.ok else self._previous)
        if not seg.ok or before is None or before.setting == seg.setting:
            return
        live = seg.process != 0 and seg.process == before.process
        kind = MarkKind.LIVE if live else MarkKind.RESTART
        self._mark(start, kind, f"{kind.value} → {seg.setting}")

    def _restarted(self, reason: str, at: float) -> None:
        tl = self.timeline
        tl.bars = [replace(b, discarded=True) for b in tl.bars]
        self._cursor.clear()
        self._fresh.clear()
        self._windows.clear()
        self._previous = None
        self._mark(at, MarkKind.TRIAL_RESTARTED, f"trial restarted from scratch: {reason}")

    def _mark(self, at: float, kind: MarkKind, text: str) -> None:
        self.timeline.marks.append(Mark(at, kind, text))


def stint_bars(
    seg: SegmentRecord, start: float, fresh: bool, lane: str, spent: Mapping[int, float]
) -> list[Bar]:
    """A stint as bars: what came before its epochs, its epochs (or window), what came after.

    `spent`: seconds of an epoch already drawn as windows (the epoch's report covers them)."""
    label = seg.setting.label() or "default"

    def bar(at: float, width: float, kind: BarKind, text: str = "") -> Bar:
        return Bar(lane, at, width, kind, label, text)

    if not seg.ok:
        return [bar(start, seg.wall_s, BarKind.FAILED, "failed")]
    widths = [max(0.0, e.wall_s - spent.get(e.epoch, 0.0)) for e in seg.epochs]
    outside = seg.wall_s - (sum(widths) if seg.window is None else 0.0)
    before = _before_epochs(seg, fresh, max(0.0, outside))
    kind = BarKind.STARTUP if fresh else BarKind.SWITCH
    bars = [bar(start, before, kind)] if before > MIN_BAR_S else []
    at = start + before
    if seg.window is not None:  # an epoch that ended inside the window is the window's time
        return [*bars, bar(at, seg.wall_s - before, BarKind.WINDOW, f"w{seg.window.epoch}")]
    for epoch, width in zip(seg.epochs, widths, strict=True):
        bars.append(bar(at, width, EPOCH_KIND[seg.role], f"e{epoch.epoch}"))
        at += width
    after = start + seg.wall_s - at
    if after > MIN_BAR_S:
        bars.append(bar(at, after, BarKind.END))
    return bars


def _before_epochs(seg: SegmentRecord, fresh: bool, outside: float) -> float:
    """The part of a stint before its epochs, of the time `outside` them: the process's
    start-up (up to its end phases), or the live switch."""
    if not fresh:
        return min(seg.switch_s, outside)
    if seg.phases:
        return min(sum(s for name, s in seg.phases.items() if name not in END_PHASES), outside)
    return outside if seg.window is None else 0.0


def cut_long_gaps(timeline: TrialTimeline) -> TrialTimeline:
    """Cut the idle time between a stop and its resume to `KEPT_GAP_S`: a run resumed hours
    later stays readable. The resume mark says how long the pause was."""
    points = sorted(
        [(b.start_s, b.end_s, None) for b in timeline.bars]
        + [(m.at_s, m.at_s, m.kind) for m in timeline.marks]
    )
    cuts: list[tuple[float, float]] = []  # (from, length removed)
    reach, reach_kind = 0.0, None
    for start, end, kind in points:
        gap = start - reach
        stop_gap = kind is MarkKind.RESUMED or reach_kind is MarkKind.INTERRUPTED
        if gap > LONG_GAP_S and stop_gap:
            cuts.append((reach, gap - KEPT_GAP_S))
        if end >= reach:
            reach, reach_kind = end, kind
    if not cuts:
        return timeline

    def shift(x: float) -> float:
        return x - sum(length for at, length in cuts if x > at + length / 2)

    bars = [replace(b, start_s=shift(b.start_s)) for b in timeline.bars]
    marks = [_shifted_mark(m, shift(m.at_s), cuts) for m in timeline.marks]
    return TrialTimeline(timeline.trial, bars, marks, sum(length for _, length in cuts))


def _shifted_mark(mark: Mark, at: float, cuts: list[tuple[float, float]]) -> Mark:
    if mark.kind is not MarkKind.RESUMED:
        return replace(mark, at_s=at)
    # the cut that ends where this resume is (the pause before it)
    pause = next((n for start, n in cuts if abs(start + n + KEPT_GAP_S - mark.at_s) < 1e-6), 0.0)
    text = f"resumed ({_duration(pause + KEPT_GAP_S)} later)" if pause else mark.text
    return Mark(at, mark.kind, text)


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    if hours:
        return f"{hours} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"
