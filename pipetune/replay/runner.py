"""One tuning job replayed over a trace, through the live `Tuner` and nothing else.

The search, probing plans, recognition look-ups and accounting are the live run's code; only
the backend differs (`ReplayBackend`), and the search draws from the configurations the trace
recorded for the workload. The run directory is a scratch one, journaled without fsync: a
replay is recomputed, never resumed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.backends import registry
from pipetune.config import TuningConfig
from pipetune.probing.candidates import default_setting
from pipetune.progress import Progress
from pipetune.recognition.service import RecognitionService
from pipetune.records import Mode, SegmentRecord, SystemSetting
from pipetune.replay.oracle import oracle_for, trial_cost
from pipetune.replay.trace import Trace, TraceError, canonical_config
from pipetune.store.base import NullStore

STRATEGIES = ("v1", "v2", "pipetune", "oracle")


@dataclass(frozen=True)
class Outcome:
    """What one replayed tuning job cost and found."""

    workload: str
    strategy: str
    seed: int
    tuning_s: float  # every segment of every trial, start-ups and probes included
    energy_j: float
    energy_source: str
    best_accuracy: float | None
    best_config: dict[str, Any] | None
    best_setting: dict[str, str] | None
    train_s: float | None  # the chosen configuration trained from scratch at its chosen setting
    probe_epochs: int
    recognised: int
    trials: int
    failed: int
    summary: dict[str, Any]
    first_epochs: tuple[dict[str, Any] | None, ...] = ()  # each trial's profiling epoch
    probe_windows: int = 0  # window probes (probing.window "iterations")

    def row(self) -> dict[str, Any]:
        """The flat fields, for tables and CSV."""
        skip = ("summary", "first_epochs")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


def recorded_configs(trace: Trace, workload: str) -> list[dict[str, Any]]:
    """The workload's configurations as hyperparameter dicts, in the trace's (sorted) order."""
    return [json.loads(config) for config in trace.configs(workload)]


def check_default_recorded(trace: Trace, config: TuningConfig) -> None:
    """Every workload of the trace has the config's default setting for each recorded
    configuration; otherwise every v1 trial would fail, and every ratio to v1 be meaningless.
    Raises `TraceError` naming what the trace has."""
    default = default_setting(config.system_parameters).label()
    for workload in trace.workloads():
        for recorded in trace.configs(workload):
            settings = trace.settings(workload, recorded)
            if default not in settings:
                raise TraceError(
                    f"workload {workload!r} has no rows at the config's default setting "
                    f"{default or '(none)'} (configuration {recorded}); it has "
                    f"{', '.join(settings)}. The config's systemParameters must be the trace's."
                )


def reuse_note(trace: Trace, config: TuningConfig) -> str:
    """One line for a replay's output: whether segments may run in a reused process."""
    if not config.app.reuse_process:
        return "process reuse: off (reuseProcess false): every segment is a new process"
    missing = [w for w in trace.workloads() if not trace.has_reuse(w)]
    if not missing:
        return "process reuse: modelled from the trace's reuse figures (reuseProcess on)"
    return (
        f"process reuse: not modelled for {', '.join(missing)}: the trace has no reuse "
        "figures (recorded before trace v4, or synthetic), so every segment is charged a new "
        "process"
    )


def with_seed(config: TuningConfig, seed: int) -> TuningConfig:
    return dataclasses.replace(config, search=dataclasses.replace(config.search, seed=seed))


def with_live_of(config: TuningConfig, trace: Trace, workload: str) -> TuningConfig:
    """The config as the trace was recorded: parameters the trace does not record as live
    (all of them in a v2 trace, made before live switching) are applied by restart."""
    live = trace.live(workload)
    app = dataclasses.replace(
        config.app, live_parameters=tuple(n for n in config.app.live_parameters if n in live)
    )
    probing = dataclasses.replace(config.probing, live=config.probing.live and "cores" in live)
    return dataclasses.replace(config, app=app, probing=probing)


def replay_job(
    trace: Trace,
    workload: str,
    config: TuningConfig,
    strategy: str,
    seed: int,
    *,
    recognition: RecognitionService | None = None,
    noise: float = 0.0,
    scratch: Path | None = None,
) -> Outcome:
    """Replay one tuning job (`config.search.trials` trials, seeded by `seed`)."""
    mode = Mode(strategy)
    config = with_live_of(with_seed(config, seed), trace, workload)
    default = default_setting(config.system_parameters)
    oracle = None
    if mode is Mode.ORACLE:
        oracle = oracle_for(
            trace, workload, config.search.epochs, config.probing.objective, default
        )
    inputs = registry.BackendInputs(
        trace=trace, workload=workload, noise=noise, seed=seed, reuse=config.app.reuse_process
    )
    backend = registry.build("replay", inputs)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{strategy}-", dir=scratch))
    try:
        from pipetune.tuner import Tuner

        tuner = Tuner(
            config,
            mode,
            backend,
            NullStore(),
            Progress(quiet=True),
            run_dir,
            "trace",
            recognition if mode is Mode.PIPETUNE else None,
            configs=recorded_configs(trace, workload),
            oracle=oracle,
            durable=False,
        )
        summary = tuner.run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    firsts = tuple(_first_epoch(t.segments) for t in tuner.state.ordered())
    result = outcome(trace, workload, strategy, seed, config.search.epochs, summary)
    return dataclasses.replace(result, first_epochs=firsts)


def _first_epoch(segments: list[SegmentRecord]) -> dict[str, Any] | None:
    if not segments or not segments[0].ok or not segments[0].epochs:
        return None
    epoch = segments[0].epochs[0]
    return {
        "duration_s": epoch.duration_s,
        "samples": epoch.samples,
        "energy_j": epoch.energy.joules,
        "energy_source": epoch.energy.source,
    }


def outcome(
    trace: Trace, workload: str, strategy: str, seed: int, epochs: int, summary: dict[str, Any]
) -> Outcome:
    trials = summary["trials"]
    best = summary["best"]
    train_s = None
    if best is not None and best["system"] is not None:
        config = canonical_config(best["hyperparameters"])
        label = SystemSetting.of(best["system"]).label()
        train_s = trial_cost(trace, workload, config, label, epochs).epoch_s
    totals = summary["totals"]
    return Outcome(
        workload=workload,
        strategy=strategy,
        seed=seed,
        tuning_s=float(totals["time_s"] or 0.0),
        energy_j=float(totals["energy"]["joules"] or 0.0),
        energy_source=totals["energy"]["source"],
        best_accuracy=best["accuracy"] if best else None,
        best_config=best["hyperparameters"] if best else None,
        best_setting=best["system"] if best else None,
        train_s=train_s,
        probe_epochs=sum(t["probe_epochs"] for t in trials),
        probe_windows=sum(t.get("probe_windows", 0) for t in trials),
        recognised=sum(t["system"]["source"] == "recognized" for t in trials),
        trials=len(trials),
        failed=totals["trials_failed"],
        summary=summary,
    )
