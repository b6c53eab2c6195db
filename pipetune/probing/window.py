"""Window probes: a setting's pace measured over a window of iterations, and how sure it is.

A window probe runs a setting for a few warm-up iterations (trained, not timed: a new core
count re-clones the model replicas) and then a measured window. Its pace is the geometric mean
of the measured iteration times, with a 95 % interval from Student's t on their logarithms,
so the interval is relative (±x %) and a stray slow iteration (a GC pause) weighs less than
in an arithmetic mean. The window grows, a chunk at a time, until the interval is within
`probing.window_error` or the window reaches its cap, a share of an epoch.

Records: each chunk is one segment record with a `WindowReport`; consecutive chunks at one
setting are one window probe (`window_runs`). The default is measured before the candidates
and, when a candidate beats it, once more after them; its two windows pooled sit, in time,
where the candidate's does, so a process that gets faster as it warms favours neither.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from pipetune.records import Role, SegmentRecord, SystemSetting

# Student's t, 97.5 % quantile, for 1..30 degrees of freedom (beyond: the normal's 1.96 plus
# a small-sample term that matches the table within 0.01 from 30 up)
_T975 = (
    12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23,
    2.20, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09,
    2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04,
)  # fmt: skip


def t975(df: int) -> float:
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= len(_T975) else 1.96 + 2.4 / df


@dataclass(frozen=True)
class Pace:
    """Seconds per iteration (geometric mean) with its 95 % interval."""

    s_per_iteration: float
    low_s: float
    high_s: float
    iterations: int
    log_se: float  # standard error of the mean log time

    @property
    def rel_error(self) -> float:
        """Half the interval's width relative to the estimate (on the log scale: ±x %)."""
        return math.sqrt(self.high_s / self.low_s) - 1.0 if self.low_s > 0 else math.inf


def pace(times: tuple[float, ...] | list[float]) -> Pace | None:
    """The pace of these iteration times; None for fewer than 2."""
    logs = [math.log(t) for t in times if t > 0]
    if len(logs) < 2:
        return None
    mean = statistics.fmean(logs)
    se = statistics.stdev(logs) / math.sqrt(len(logs))
    half = t975(len(logs) - 1) * se
    return Pace(math.exp(mean), math.exp(mean - half), math.exp(mean + half), len(logs), se)


def iterations_needed(p: Pace, error: float) -> int:
    """About how many measured iterations bring the interval within ±`error`."""
    if p.rel_error <= error:
        return p.iterations
    return iterations_for(p.log_se * math.sqrt(p.iterations), error)


def iterations_for(spread: float, error: float) -> int:
    """Iterations whose mean log time has a 95 % interval of ±`error`, when one iteration's log
    time spreads by `spread` (its standard deviation)."""
    return math.ceil((1.96 * spread / math.log1p(error)) ** 2)


# ---------------------------------------------------------------------- records


def window_runs(history: list[SegmentRecord]) -> list[list[SegmentRecord]]:
    """The window probes of a trial: runs of consecutive window chunks at one setting."""
    runs: list[list[SegmentRecord]] = []
    previous: SegmentRecord | None = None
    for seg in history:
        if seg.ok and seg.role is Role.PROBE and seg.window is not None:
            same = previous is not None and previous.setting == seg.setting
            if same and previous is not None and previous.process == seg.process:
                runs[-1].append(seg)
            else:
                runs.append([seg])
            previous = seg
        else:
            previous = None
    return runs


def measured(run: list[SegmentRecord]) -> tuple[float, ...]:
    return tuple(t for seg in run if seg.window is not None for t in seg.window.measured_s)


def warmup_iterations(run: list[SegmentRecord]) -> int:
    return sum(seg.window.warmup for seg in run if seg.window is not None)


def used_iterations(run: list[SegmentRecord]) -> int:
    return sum(len(seg.window.iteration_s) for seg in run if seg.window is not None)


def joules_per_iteration(runs: list[list[SegmentRecord]]) -> float | None:
    """The windows' energy per measured iteration, at each chunk's mean power (None: no
    energy measured)."""
    joules, count = 0.0, 0
    for seg in (s for run in runs for s in run):
        w = seg.window
        if w is None or not w.measured_s or w.energy.source == "none":
            continue
        total = sum(w.iteration_s)
        joules += w.energy.joules * (sum(w.measured_s) / total if total > 0 else 1.0)
        count += len(w.measured_s)
    return joules / count if count else None


def energy_source(runs: list[list[SegmentRecord]]) -> str:
    sources = {s.window.energy.source for run in runs for s in run if s.window is not None}
    sources.discard("none")
    return sources.pop() if len(sources) == 1 else ("mixed" if sources else "none")


def by_setting(history: list[SegmentRecord]) -> dict[SystemSetting, list[list[SegmentRecord]]]:
    out: dict[SystemSetting, list[list[SegmentRecord]]] = {}
    for run in window_runs(history):
        out.setdefault(run[0].setting, []).append(run)
    return out


def pooled_pace(runs: list[list[SegmentRecord]]) -> Pace | None:
    return pace([t for run in runs for t in measured(run)])


def summary(run: list[SegmentRecord]) -> dict[str, object]:
    """One window probe as summary.json gives it."""
    p = pace(measured(run))
    per_j = joules_per_iteration([run])
    return {
        "iterations": len(measured(run)),
        "warmup_iterations": warmup_iterations(run),
        "s_per_iteration": round(p.s_per_iteration, 5) if p else None,
        "interval_s": [round(p.low_s, 5), round(p.high_s, 5)] if p else None,
        "rel_error": round(p.rel_error, 4) if p else None,
        "energy_j_per_iteration": round(per_j, 4) if per_j is not None else None,
        "energy_source": energy_source([run]),
        "epoch": run[-1].window.epoch if run[-1].window else None,
        "epoch_iterations": run[-1].window.epoch_iterations if run[-1].window else None,
        "chunks": len(run),
    }
