"""What a run would do, in words: for `--dry-run` and the run's header."""

from __future__ import annotations

from pipetune.config import TuningConfig
from pipetune.config_probing import ProbeWindow
from pipetune.probing.candidates import (
    default_setting,
    live_parameters,
    probe_budget,
    probe_candidates,
)
from pipetune.records import Mode


def describe_plan(config: TuningConfig, mode: Mode) -> list[str]:
    """What a run would do (for --dry-run and the run header)."""
    lines = [
        f"mode {mode.value}: {config.search.trials} trial(s) × {config.search.epochs} epoch(s), "
        f"{config.search.sampler} search (seed {config.search.seed})"
    ]
    default = default_setting(config.system_parameters)
    lines.append(f"default system setting: {default.label() or '(none)'}")
    if mode is Mode.PIPETUNE:
        candidates = probe_candidates(config.system_parameters, config.probing.strategy)
        budget = probe_budget(len(candidates), config.search.epochs, config.probing.budget)
        objective = config.probing.objective.describe()
        lines.append(
            f"probing ({config.probing.strategy}, select by {objective}): "
            + ", ".join(s.label() for s in candidates[:budget])
        )
        if budget < len(candidates):
            skipped = ", ".join(s.label() for s in candidates[budget:])
            lines.append(f"  not probed (budget {budget} epoch(s)): {skipped}")
        live = live_parameters(config)
        modes = ", ".join(
            f"{p.name} {'live' if p.name in live else 'restart'}" for p in config.system_parameters
        )
        lines.append(f"applied: {modes or '(no system parameters)'}")
        if config.probing.continuation:
            lines.append(
                "in place: one process per trial while only live parameters change; a probe "
                "whose setting is chosen trains on without a restart"
            )
        probing = config.probing
        windows = probing.window == ProbeWindow.ITERATIONS and probing.live and bool(live)
        if windows:
            lines.append(
                f"window probes: after a warm-up epoch at the widest live values, each live "
                f"candidate over ≤ {probing.window_max_share:.0%} of an epoch "
                f"({probing.window_warmup} warm-up + ≥ {probing.window_min} measured iterations, "
                f"±{probing.window_error:.0%} target); the default stays unless a candidate is "
                f"faster with {probing.window_confidence:.0%} confidence"
            )
        if any(p.name not in live for p in config.system_parameters):
            lines.append(
                "restart candidates: not probed (window probes are for live parameters)"
                if windows
                else f"restart candidates: probed {probing.restart_probes} "
                f"(assumed gain {probing.restart_gain:.0%} of an epoch)"
            )
    if mode is Mode.ORACLE:
        lines.append("oracle: each trial runs at its configuration's best setting in the trace")
    app = config.app
    lines.append(f"app {app.name} ({app.engine}): {app.script}, {app.settings.describe()}")
    return lines
