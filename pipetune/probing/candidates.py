"""Which system settings a trial probes, in order, within its probe budget."""

from __future__ import annotations

import itertools
from typing import assert_never

from pipetune.config import SystemParameter, TuningConfig
from pipetune.config_probing import ProbingStrategy
from pipetune.records import ApplyMode, SystemSetting


def default_setting(params: tuple[SystemParameter, ...]) -> SystemSetting:
    return SystemSetting.of({p.name: p.default for p in params})


def probe_candidates(
    params: tuple[SystemParameter, ...], strategy: ProbingStrategy | str
) -> list[SystemSetting]:
    """Every setting the strategy (or the strategy of that name) would probe, the default first.

    one-at-a-time (the original's): vary each parameter alone with the others at their default.
    grid: every combination.

    Raises:
        ValueError: `strategy` names no `ProbingStrategy`.
    """
    default = default_setting(params)
    match ProbingStrategy(strategy):
        case ProbingStrategy.GRID:
            combos = itertools.product(*(p.values for p in params))
            settings = [
                SystemSetting(tuple(zip((p.name for p in params), c, strict=True))) for c in combos
            ]
        case ProbingStrategy.ONE_AT_A_TIME:
            settings = [default]
            for p in params:
                for value in p.values[1:]:
                    settings.append(SystemSetting.of({**default.as_dict(), p.name: value}))
        case unknown:
            assert_never(unknown)
    settings.sort(key=lambda s: s != default)  # stable: default first, order otherwise kept
    return settings


def probe_budget(n_candidates: int, epochs: int, budget: int | None) -> int:
    """Probe epochs to spend (the default's included): never more than epochs − 1."""
    limit = n_candidates if budget is None else min(budget, n_candidates)
    return max(1, min(limit, epochs - 1))


def live_parameters(config: TuningConfig) -> frozenset[str]:
    """The system parameters a running trial takes live (none with `probing.live` off)."""
    if not (config.probing.live and config.probing.continuation):
        return frozenset()
    return frozenset(
        p.name for p in config.system_parameters if config.app.apply_mode(p.name) is ApplyMode.LIVE
    )


def widest_setting(params: tuple[SystemParameter, ...]) -> SystemSetting:
    """The default with `cores` at its largest candidate: what a process that may take any of
    them live is launched with (a launch narrower than a later setting would bound it)."""
    values = {p.name: p.default for p in params}
    for p in params:
        if p.name == "cores":
            values["cores"] = max(p.values, key=lambda v: int(v))
    return SystemSetting.of(values)
