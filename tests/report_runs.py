"""Synthetic run directories for the report tests, written by the real writers: the run
recorder journals typed events, `results` writes summary.json and the CSVs from the state."""

from __future__ import annotations

from pathlib import Path

from pipetune.config_probing import ProbeWindow, ProbingConfig
from pipetune.probing.plan import FixedPlan, PipelinedPlan, TrialPlan
from pipetune.records import (
    ApplyMode,
    Energy,
    EpochReport,
    Role,
    SegmentRecord,
    SettingSource,
    SystemSetting,
)
from pipetune.results import run_summary, trial_summary, write_results
from pipetune.run_events import (
    DecisionMade,
    RunFinished,
    RunInterrupted,
    RunResumed,
    RunStarted,
    SegmentRecorded,
    SegmentStarted,
    Switch,
    TrialDone,
    TrialFailed,
    TrialStarted,
)
from pipetune.run_recorder import RunRecorder
from pipetune.run_state import RunState

A = SystemSetting.of({"cores": "2"})  # the default
B = SystemSetting.of({"cores": "1"})
FAILURE = "spark-submit exited with 1 (deliberately)"
PHASES = {"launch": 1.0, "spark context": 3.0, "data": 2.0, "model": 1.0, "save": 0.5}


def epoch(n: int, duration: float, accuracy: float, joules: float, source: str) -> EpochReport:
    return EpochReport(n, duration, 0.5, 0.3, accuracy, 1000, {}, Energy(joules, source))


def probed_trial(rec: RunRecorder, trial: str, number: int, source: str, acc: float) -> None:
    """Epoch 1 probes the default, epoch 2 cores=1 live, epochs 3-4 train back at the default:
    one process, two live switches."""
    rec.record(TrialStarted(trial, number, {"learning_rate": 0.05 * (number + 1)}, "/ck"))
    rec.record(SegmentStarted(trial, 0, 1, A, Role.PROBE, 4, 1))
    e1 = epoch(1, 6.0, acc - 0.3, 60.0, source)
    e2 = epoch(2, 9.0, acc - 0.1, 80.0, source)
    e3, e4 = epoch(3, 5.0, acc - 0.05, 50.0, source), epoch(4, 5.0, acc, 50.0, source)
    segments = [
        SegmentRecord(
            0, A, Role.PROBE, (e1,), 14.0, Energy(140.0, source), process=1, phases=PHASES
        ),
        SegmentRecord(1, B, Role.PROBE, (e2,), 9.7, Energy(85.0, source), process=1, switch_s=0.2),
        SegmentRecord(
            2, A, Role.TRAIN, (e3, e4), 12.7, Energy(110.0, source), process=1, switch_s=0.2
        ),
    ]
    rec.record(DecisionMade(trial, 0, True, B, Role.PROBE, "probing cores=1", at=A))
    rec.record(Switch(trial, 1, ApplyMode.LIVE, A, B, 1))
    rec.record(DecisionMade(trial, 1, True, A, Role.TRAIN, "cores=2 is the fastest", at=B))
    rec.record(Switch(trial, 2, ApplyMode.LIVE, B, A, 1))
    for segment in segments:
        rec.record(SegmentRecorded(trial, segment))
    rec.record(TrialDone(trial, acc))


def v1_trial(rec: RunRecorder, trial: str, number: int, source: str, acc: float) -> None:
    rec.record(TrialStarted(trial, number, {"learning_rate": 0.05 * (number + 1)}, "/ck"))
    rec.record(SegmentStarted(trial, 0, 1, A, Role.TRAIN, 4, 1))
    epochs = tuple(epoch(n, 7.0, acc - 0.1 * (4 - n), 60.0, source) for n in (1, 2, 3, 4))
    segment = SegmentRecord(
        0, A, Role.TRAIN, epochs, 40.0, Energy(300.0, source), process=1, phases=PHASES
    )
    rec.record(SegmentRecorded(trial, segment))
    rec.record(TrialDone(trial, acc))


def failed_trial(rec: RunRecorder, trial: str, number: int) -> None:
    rec.record(TrialStarted(trial, number, {"learning_rate": 0.5}, "/ck"))
    rec.record(SegmentStarted(trial, 0, 1, A, Role.PROBE, 4, 1))
    failed = SegmentRecord(0, A, Role.PROBE, (), 3.0, Energy(20.0, "estimate"), FAILURE, process=1)
    rec.record(SegmentRecorded(trial, failed))
    rec.record(TrialFailed(trial, FAILURE))


def plan_for(mode: str) -> TrialPlan:
    if mode == "v1":
        return FixedPlan(4, A, SettingSource.DEFAULT)
    return PipelinedPlan(
        4, [A, B], ProbingConfig(window=ProbeWindow.EPOCH), live=frozenset({"cores"})
    )


def write_run(
    root: Path,
    name: str = "run",
    *,
    mode: str = "pipetune",
    trials: int = 2,
    resumed: bool = False,
    failed: bool = False,
    source: str = "estimate",
) -> Path:
    """A finished run of `trials` trials (the last one failed with `failed`), stopped and
    resumed after its first trial with `resumed`."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    state = RunState()
    rec = RunRecorder(run_dir / "journal.jsonl", state, durable=False)
    rec.record(RunStarted(name, mode, trials, "test"))
    for number in range(trials):
        trial = f"t{number:03d}"
        accuracy = 0.9 - 0.05 * number
        if failed and number == trials - 1:
            failed_trial(rec, trial, number)
        elif mode == "v1":
            v1_trial(rec, trial, number, source, accuracy)
        else:
            probed_trial(rec, trial, number, source, accuracy)
        if resumed and number == 0:
            rec.record(RunInterrupted())
            _write_summary(run_dir, state, mode, "interrupted")
            rec.record(RunResumed())
    rec.record(RunFinished())
    rec.close()
    _write_summary(run_dir, state, mode, "finished")
    return run_dir


def _write_summary(run_dir: Path, state: RunState, mode: str, status: str) -> None:
    trials = [trial_summary(t, plan_for(mode), A) for t in state.ordered()]
    meter = "estimate: CPU seconds × 10 W/core + 5 W idle (test)"
    write_results(run_dir, state, run_summary(state, trials, status, meter))
