"""The window-probe steps of a pipelined trial (probing.window "iterations").

After the process's first epoch, trained at its launch setting (each live parameter at its
widest value) to get past JIT warm-up, the plan probes each live candidate over a window of
iterations in the same process, the one it is running first (no switch for it):

    first · other candidates … · first again (only when a later one beat it)

A process gets faster as it warms, so a later window is favoured: one that loses to an earlier
one lost for real, and one that wins makes the plan measure the first setting again, after
it. Pooled, the first setting's two windows then sit, in time, where the others' do.

Each window starts with `window_warmup` unmeasured iterations, measures `window_min`, and
is extended, a chunk at a time, until its pace is known within ±`window_error` or it reaches
`window_max_share` of an epoch. The choice compares paces (and energy per iteration) and
switches only when the best candidate is faster than the default with probability at least
`window_confidence` (one-sided, normal approximation on the difference of mean log times);
otherwise the default stays, and the decision says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from pipetune.config_probing import ProbingConfig
from pipetune.probing import window
from pipetune.probing.measure import probe_result
from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, score, select_best
from pipetune.records import Role, SegmentRecord, SystemSetting


@dataclass(frozen=True)
class WindowStep:
    setting: SystemSetting
    iterations: int
    warmup: int
    why: str


def epoch_iterations(history: list[SegmentRecord]) -> int:
    """Iterations in an epoch, as the app last reported it (0: not known)."""
    for seg in reversed(history):
        if seg.window is not None:
            return seg.window.epoch_iterations
        for epoch in reversed(seg.epochs):
            if epoch.iterations:
                return epoch.iterations
    return 0


def cap(probing: ProbingConfig, history: list[SegmentRecord]) -> int:
    """The most iterations one window may use, warm-up included: `window_max_share` of an
    epoch, but never fewer than `window_min` measured (an epoch of few iterations would
    otherwise leave too few to tell settings apart)."""
    least = probing.window_warmup + probing.window_min
    per_epoch = epoch_iterations(history)
    return max(least, math.floor(probing.window_max_share * per_epoch))


def next_step(
    history: list[SegmentRecord],
    order: list[SystemSetting],
    probing: ProbingConfig,
    epochs: int,
) -> WindowStep | None:
    """The next window (or chunk of one) to run, or None when the windows are done.
    `order`: the settings to measure, the first one first (and again when beaten). A window
    runs only where it leaves at least as much of the trial's training after it as it takes
    (shortened to fit, down to 2 measured iterations)."""
    limit = cap(probing, history)
    room = _room(history, epochs)
    runs = window.window_runs(history)
    if runs and history and runs[-1][-1] is history[-1]:
        extend = min(_extension(runs[-1], probing, limit), room)
        if extend > 0:
            setting = runs[-1][0].setting
            why = f"measuring {setting} {extend} iterations longer (±{probing.window_error:.0%})"
            return WindowStep(setting, extend, 0, why)
    first = min(first_window(history, probing, limit), room)
    if first < probing.window_warmup + 2:
        return None  # no room left for another window
    tried = {s.setting for s in history if s.role is Role.PROBE}
    for candidate in order:
        if candidate not in tried:
            why = f"probing {candidate} over a window of {first} iterations"
            return WindowStep(candidate, first, probing.window_warmup, why)
    head = order[0]
    groups = window.by_setting(history)
    found = results(history, order)
    if len(groups.get(head, [])) == 1 and len(found) > 1:
        try:
            best = select_best(found, probing.objective)
        except ValueError:
            return None
        if best.setting != head:
            return WindowStep(
                head,
                first,
                probing.window_warmup,
                f"measuring {head} again, after {best.setting} beat it later in the process",
            )
    return None


def _room(history: list[SegmentRecord], epochs: int) -> int:
    """The most iterations a window may take now: half of what is left of the trial."""
    per_epoch = epoch_iterations(history)
    if not per_epoch:
        return 1 << 30  # not known yet: no limit from it
    done = sum(
        len(s.window.iteration_s) if s.window is not None else len(s.epochs) * per_epoch
        for s in history
        if s.ok
    )
    return max(0, epochs * per_epoch - done) // 2


def first_window(history: list[SegmentRecord], probing: ProbingConfig, limit: int) -> int:
    """A new window's iterations, warm-up included: as many as the noise of the last epoch's
    iterations says the error target needs (each later chunk costs a pause and a restart of
    the optimizer), at least `window_min` measured, at most `limit`."""
    least = probing.window_warmup + probing.window_min
    spread = next(
        (
            e.iteration_spread
            for s in reversed(history)
            for e in reversed(s.epochs)
            if e.iteration_spread is not None
        ),
        None,
    )
    if spread is None:
        return min(least, limit)
    needed = window.iterations_for(spread, probing.window_error)
    return min(max(least, probing.window_warmup + needed), limit)


def _extension(run: list[SegmentRecord], probing: ProbingConfig, limit: int) -> int:
    """More iterations for the window just measured, or 0 when it is long enough."""
    used = window.used_iterations(run)
    p = window.pace(window.measured(run))
    if used >= limit:
        return 0
    if p is not None and p.rel_error <= probing.window_error:
        return 0
    have = p.iterations if p is not None else 0
    need = window.iterations_needed(p, probing.window_error) if p is not None else 2
    return min(limit - used, max(4, need - have))


def results(history: list[SegmentRecord], order: list[SystemSetting]) -> list[ProbeResult]:
    """One result per window-probed setting (its windows pooled), in `order`, as epochs."""
    groups = window.by_setting(history)
    per_epoch = epoch_iterations(history)
    out = []
    for setting in order:
        runs = groups.get(setting)
        if runs is not None and window.pooled_pace(runs) is not None:
            out.append(_as_epoch(runs, per_epoch))
            continue
        # an app that cannot pause inside an epoch probed it for a whole epoch instead
        epochs = [s for s in history if s.setting == setting and s.role is Role.PROBE]
        if epochs and epochs[-1].ok and epochs[-1].epochs:
            out.append(probe_result(epochs[-1]))
    return out


def run_results(history: list[SegmentRecord]) -> list[ProbeResult]:
    """One result per window probe, in order (a re-measured default appears twice)."""
    per_epoch = epoch_iterations(history)
    return [_as_epoch([run], per_epoch) for run in window.window_runs(history)]


def _as_epoch(runs: list[list[SegmentRecord]], per_epoch: int) -> ProbeResult:
    """Windows of one setting, pooled, as what a whole epoch at their pace would cost."""
    p = window.pooled_pace(runs)
    joules = window.joules_per_iteration(runs)
    return ProbeResult(
        runs[0][0].setting,
        p.s_per_iteration * per_epoch if p else None,
        joules * per_epoch if joules is not None else None,
        window.energy_source(runs),
        error=None if p else "too few iterations measured",
        process=runs[-1][-1].process,
    )


def choice(
    history: list[SegmentRecord],
    settings: list[SystemSetting],
    objective: Objective,
    confidence: float,
) -> tuple[SystemSetting, str]:
    """The setting to train at after the windows, and why (`settings[0]`: the default)."""
    default = settings[0]
    found = results(history, settings)
    try:
        best = select_best(found, objective)
    except ValueError:
        return default, f"no window measured a pace: keeping the default {default}"
    base = found[0]
    if base.setting != default or best.setting == default:
        return best.setting, f"{best.setting} is the fastest window-probed setting"
    groups = window.by_setting(history)
    paces = [window.pooled_pace(groups[s]) for s in (best.setting, default) if s in groups]
    lead = 1.0 - score(best, base, objective) / score(base, base, objective)
    if len(paces) < 2 or any(p is None for p in paces):  # an epoch probe: no spread known
        return best.setting, f"{best.setting} beats the default by {lead:.0%}"
    se = math.sqrt(sum(p.log_se**2 for p in paces if p is not None))
    needed = NormalDist().inv_cdf(confidence) * se
    # in the same terms as `lead` (time saved): 1 - exp(-needed)
    sure = f"{confidence:.0%} sure needs a lead above {-math.expm1(-needed):.0%}"
    if -math.log1p(-lead) <= needed:
        return default, (
            f"{best.setting} leads the default by {lead:.0%}, too little to tell them apart "
            f"at the windows' cap ({sure}): keeping the default {default}"
        )
    return best.setting, f"{best.setting} beats the default by {lead:.0%} ({sure})"
