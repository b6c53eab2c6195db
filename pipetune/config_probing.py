"""The `probing` section of pipetune.conf: how system settings are probed inside a trial.

Imports only `config_check`, `errors` and the probing objective (which imports nothing), like
the rest of the config layer. The closed vocabularies of the section are enums whose values are
the names written in pipetune.conf.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pipetune.config_check import Checker, is_number, show
from pipetune.probing.objective import OBJECTIVE_METRICS, Objective


class ProbingStrategy(enum.StrEnum):
    """Which settings a trial probes (probing/candidates.py)."""

    ONE_AT_A_TIME = "one-at-a-time"  # each parameter alone, the others at their default
    GRID = "grid"  # every combination


class SwitchRule(enum.StrEnum):
    """When a trial leaves its running setting for a better one that needs a restart."""

    ALWAYS = "always"  # whenever it is better per epoch
    WHEN_IT_PAYS = "when-it-pays"  # only when the remaining epochs repay the start-up


class RestartProbes(enum.StrEnum):
    """Whether candidates that need a restart (memory) are probed."""

    WHEN_THEY_CAN_PAY = "when-they-can-pay"  # if the remaining epochs could repay the start-ups
    ALWAYS = "always"
    NEVER = "never"


class ProbeWindow(enum.StrEnum):
    """What one probe of a live setting measures."""

    ITERATIONS = "iterations"  # a window of iterations inside an epoch (probing/window.py)
    EPOCH = "epoch"  # a whole epoch


@dataclass(frozen=True)
class ProbingConfig:
    strategy: ProbingStrategy = ProbingStrategy.ONE_AT_A_TIME
    objective: Objective = field(default_factory=lambda: Objective({"duration": 1.0}))
    budget: int | None = None  # probe epochs including the default's; None = all candidates
    # A probe's process goes on training when its setting is chosen, and takes the next
    # candidates live when only live parameters differ: no new start-up for either.
    continuation: bool = True
    # Apply live parameters (cores) in the running job; false: every change is a restart.
    live: bool = True
    # At a pause, restart at a better setting only when the remaining epochs repay the
    # start-up ("when-it-pays"), or whenever it is better per epoch ("always").
    switch: SwitchRule = SwitchRule.ALWAYS
    # Candidates that need a restart (memory): probed only when the remaining epochs could
    # repay the start-ups, if such a change saved `restart_gain` of an epoch ("when-they-can-
    # pay"), or always, or never.
    restart_probes: RestartProbes = RestartProbes.WHEN_THEY_CAN_PAY
    restart_gain: float = 0.25
    # A candidate measured after the default runs warmer; when it beats the default by less
    # than this fraction, the default is measured again, warm, before choosing.
    warmup_margin: float = 0.5
    # What a probe of a live setting is: a window of iterations inside an epoch, after a first
    # epoch of warm-up at the launch setting ("iterations", probing/window.py), or a whole
    # epoch ("epoch"). Windows grow until their pace is known within ±`window_error` (95 %),
    # from `window_min` measured iterations after `window_warmup` unmeasured ones, up to
    # `window_max_share` of an epoch, warm-up included. A candidate replaces the default only
    # when it is faster with probability `window_confidence` (one-sided).
    window: ProbeWindow = ProbeWindow.ITERATIONS
    window_error: float = 0.05
    window_warmup: int = 4
    window_min: int = 12
    window_max_share: float = 0.3
    window_confidence: float = 0.9


_KEYS = {
    "strategy",
    "select_by",
    "budget",
    "continuation",
    "live",
    "switch",
    "restart_probes",
    "restart_gain",
    "warmup_margin",
    "window",
    "window_error",
    "window_warmup",
    "window_min",
    "window_max_share",
    "window_confidence",
}


def parse_probing(c: Checker, raw: Any, epochs: int) -> ProbingConfig:
    if not isinstance(raw, dict):
        c.problem("$.probing", "an object", show(raw))
        return ProbingConfig()
    c.unknown_keys("$.probing", raw, _KEYS)
    d = ProbingConfig()
    strategy = c.choice("$.probing.strategy", raw.get("strategy", d.strategy), ProbingStrategy)
    objective = _parse_objective(c, raw.get("select_by", "duration"))
    budget = raw.get("budget")
    if budget is not None:
        budget = c.positive_int("$.probing.budget", budget)
        if budget and epochs >= 1 and budget > epochs - 1:
            c.problem(
                "$.probing.budget",
                f"at most epochs − 1 = {epochs - 1} probe epochs (one epoch must remain "
                "for the chosen setting)",
                str(budget),
            )
    continuation = c.boolean("$.probing.continuation", raw.get("continuation", True), True)
    live = c.boolean("$.probing.live", raw.get("live", True), True)
    switch = c.choice("$.probing.switch", raw.get("switch", d.switch), SwitchRule)
    restarts = c.choice(
        "$.probing.restart_probes", raw.get("restart_probes", d.restart_probes), RestartProbes
    )
    return ProbingConfig(
        strategy=strategy,
        objective=objective,
        budget=budget,
        continuation=continuation,
        live=live,
        switch=switch,
        restart_probes=restarts,
        restart_gain=_fraction(c, "$.probing.restart_gain", raw.get("restart_gain", 0.25)),
        warmup_margin=_fraction(c, "$.probing.warmup_margin", raw.get("warmup_margin", 0.5)),
        **_parse_window(c, raw),
    )


def _parse_window(c: Checker, raw: dict[str, Any]) -> dict[str, Any]:
    p = "$.probing"
    window = raw.get("window", ProbeWindow.ITERATIONS)
    out: dict[str, Any] = {"window": c.choice(f"{p}.window", window, ProbeWindow)}
    for name, least, count in (("window_warmup", 0, 4), ("window_min", 2, 12)):
        value = raw.get(name, count)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            c.problem(f"{p}.{name}", f"a whole number of iterations ≥ {least}", show(value))
            value = count
        out[name] = value
    for name, share in (("window_error", 0.05), ("window_max_share", 0.3)):
        value = raw.get(name, share)
        if not is_number(value) or not 0 < value <= 1:
            c.problem(f"{p}.{name}", "a fraction above 0, at most 1", show(value))
            value = share
        out[name] = float(value)
    value = raw.get("window_confidence", 0.9)
    if not is_number(value) or not 0.5 <= value < 1:
        c.problem(f"{p}.window_confidence", "a probability from 0.5 up to (not) 1", show(value))
        value = 0.9
    out["window_confidence"] = float(value)
    return out


def _fraction(c: Checker, path: str, value: Any) -> float:
    if not is_number(value) or not 0 <= value <= 10:
        c.problem(path, "a number from 0 to 10 (a fraction of an epoch's time)", show(value))
        return 0.0
    return float(value)


def _parse_objective(c: Checker, raw: Any) -> Objective:
    p = "$.probing.select_by"
    expected = f'one of {list(OBJECTIVE_METRICS)} or weights {{"duration": w, "energy": w}}'
    if isinstance(raw, str):
        if raw in OBJECTIVE_METRICS:
            return Objective({raw: 1.0})
        c.problem(p, expected, show(raw))
    elif isinstance(raw, dict) and raw:
        c.unknown_keys(p, raw, set(OBJECTIVE_METRICS))
        weights = {k: v for k, v in raw.items() if k in OBJECTIVE_METRICS}
        bad = {k: v for k, v in weights.items() if not is_number(v) or v < 0}
        for k, v in bad.items():
            c.problem(f"{p}.{k}", "a weight ≥ 0", show(v))
        if not bad and weights and sum(weights.values()) > 0:
            return Objective({k: float(v) for k, v in weights.items() if v > 0})
        if not bad:
            c.problem(p, "weights with a positive sum", show(raw))
    else:
        c.problem(p, expected, show(raw))
    return Objective({"duration": 1.0})
