"""ReplayBackend: segments continue a trial's epochs, come from the trace, fail like a missing
live run would, and are reproducible under noise."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipetune.errors import SegmentFailed
from pipetune.records import EpochReport, Role, SegmentRequest, SystemSetting
from pipetune.replay import COLUMNS, ReplayBackend, Trace, TraceError, synthetic_trace
from pipetune.telemetry.profile import JobProfile

DEFAULT = SystemSetting.of({"cores": 2, "memory": "2g"})
FAST = SystemSetting.of({"cores": 4, "memory": "2g"})
HP = {"lr": 0.1, "batch_size": 64}
PROFILE = JobProfile({"task-clock": 900.0}, "perf", 30.0)


def rows(setting: SystemSetting, speed: float, startup: float) -> list[dict[str, object]]:
    return [
        {
            "workload": "lenet5",
            "config": json.dumps(HP, sort_keys=True, separators=(",", ":")),
            "setting": setting.label(),
            "epoch": e,
            "duration_s": 10.0 * e / speed,
            "eval_s": 1.0,
            "energy_j": 100.0 * e,
            "energy_source": "rapl",
            "accuracy": round(0.1 * e + (0.01 if speed > 1 else 0.0), 3),
            "loss": None if e == 2 else 1.0 / e,
            "samples": 6144,
            "startup_s": startup,
            "switch_s": 0.0,
            "profile": json.dumps(PROFILE.to_dict()) if e == 1 else None,
            "synthetic": False,
        }
        for e in range(1, 6)
    ]


@pytest.fixture
def trace() -> Trace:
    data = rows(DEFAULT, 1.0, 20.0) + rows(FAST, 2.0, 30.0)
    return Trace(pd.DataFrame(data, columns=list(COLUMNS)))


def ignore(report: EpochReport, setting: SystemSetting, role: Role) -> None:
    """An `EpochCallback` that keeps nothing."""


def request(
    setting: SystemSetting, epochs: int, trial: str = "t1", profile: bool = False
) -> SegmentRequest:
    return SegmentRequest(trial, setting, epochs, Role.TRAIN, dict(HP), "ckpt", "log", profile)


def test_segments_continue_the_trials_epochs(trace: Trace):
    backend = ReplayBackend(trace, "lenet5")
    seen: list[EpochReport] = []

    def on_epoch(report: EpochReport, setting: SystemSetting, role: Role) -> None:
        assert (setting, role) == (DEFAULT, Role.TRAIN)
        seen.append(report)

    first = backend.run_segment(request(DEFAULT, 2), on_epoch)
    second = backend.run_segment(request(DEFAULT, 2), on_epoch)
    assert [e.epoch for e in first.epochs] == [1, 2]
    assert [e.epoch for e in second.epochs] == [3, 4]
    assert seen == [*first.epochs, *second.epochs]
    assert backend.progress("t1") == 4 and backend.progress("t2") == 0
    # a new process: its first epoch costs the group's epoch 1 (warm-up), the next epoch 4's
    assert [e.duration_s for e in second.epochs] == [10.0, 40.0]
    assert [e.accuracy for e in second.epochs] == [0.3, 0.4]  # still epochs 3 and 4
    assert first.epochs[1].loss is None and first.epochs[0].echoed == HP
    # wall = start-up + epochs; start-up energy = start-up × epoch 1's rate (100 J / 11 s).
    assert first.wall_s == pytest.approx(20.0 + 11.0 + 21.0)
    assert first.startup_s == pytest.approx(20.0)
    assert first.energy.joules == pytest.approx(100.0 + 200.0 + 20.0 * 100.0 / 11.0)
    assert first.energy.source == "rapl" and first.app_id == "replay"


def test_a_continued_trial_takes_the_traces_accuracy_at_the_new_setting(trace: Trace):
    backend = ReplayBackend(trace, "lenet5")
    backend.run_segment(request(DEFAULT, 1), ignore)  # the probe at the default
    result = backend.run_segment(request(FAST, 2), ignore)
    assert [e.epoch for e in result.epochs] == [2, 3]
    assert [e.accuracy for e in result.epochs] == [0.21, 0.31]  # the FAST rows of epochs 2, 3
    assert [e.duration_s for e in result.epochs] == [5.0, 15.0]  # FAST's cold epoch 1, then 3
    assert result.startup_s == pytest.approx(30.0)


def test_missing_setting_or_epochs_fail_the_segment(trace: Trace):
    backend = ReplayBackend(trace, "lenet5")
    other = SystemSetting.of({"cores": 8, "memory": "2g"})
    with pytest.raises(
        SegmentFailed, match=r"cores=8,memory=2g.*recorded for this config: cores=2"
    ):
        backend.run_segment(request(other, 1), ignore)
    assert backend.progress("t1") == 0  # a failed segment leaves the trial where it was
    backend.run_segment(request(DEFAULT, 4), ignore)
    # Epochs are replayed one by one (a live switch may change the setting mid-segment), so a
    # segment past the trace's last epoch fails at that epoch, as a live run would crash there.
    seen: list[int] = []
    with pytest.raises(SegmentFailed, match=r"needs epoch 6 .* the trace has epochs 1\.\.5"):
        backend.run_segment(request(DEFAULT, 2), lambda e, s, r: seen.append(e.epoch))
    assert seen == [5]
    assert backend.progress("t1") == 4  # the failed segment's epoch 5 does not count
    unknown = SegmentRequest("t9", DEFAULT, 1, Role.TRAIN, {"lr": 9}, "c", "l")
    with pytest.raises(SegmentFailed, match=r'config \{"lr":9\}'):
        backend.run_segment(unknown, ignore)


def test_unknown_workload_and_bad_noise_are_rejected(trace: Trace):
    with pytest.raises(TraceError, match="'resnet' is not in the trace"):
        ReplayBackend(trace, "resnet")
    with pytest.raises(ValueError, match="noise"):
        ReplayBackend(trace, "lenet5", noise=-0.1)


def _walls(trace: Trace, seed: int, noise: float = 0.1) -> list[float]:
    backend = ReplayBackend(trace, "lenet5", noise=noise, seed=seed)
    a = backend.run_segment(request(DEFAULT, 2, "a"), ignore)
    b = backend.run_segment(request(FAST, 3, "b"), ignore)
    return [a.wall_s, a.energy.joules, *(e.duration_s for e in a.epochs + b.epochs), b.wall_s]


def test_noise_is_reproducible_per_seed(trace: Trace):
    assert _walls(trace, 3) == _walls(trace, 3)
    assert _walls(trace, 3) != _walls(trace, 4)
    assert _walls(trace, 3) != _walls(trace, 3, noise=0.0)
    assert _walls(trace, 3, noise=0.0) == _walls(trace, 4, noise=0.0)
    backend = ReplayBackend(trace, "lenet5", noise=0.1, seed=3)
    result = backend.run_segment(request(DEFAULT, 2, "a"), ignore)
    assert [e.accuracy for e in result.epochs] == [0.1, 0.2]  # accuracy is never noised
    # Each epoch keeps its power: energy moves with time.
    assert result.epochs[1].energy.joules / result.epochs[1].wall_s == pytest.approx(200 / 21)


def test_profile_is_attached_when_asked(trace: Trace):
    backend = ReplayBackend(trace, "lenet5")
    asked = backend.run_segment(request(DEFAULT, 1, profile=True), ignore)
    assert JobProfile.from_dict(asked.stints[0].profile) == PROFILE == backend.profile()
    plain = backend.run_segment(request(DEFAULT, 1), ignore)
    assert all(s.profile is None for s in plain.stints) and not plain.notes


def test_replays_a_synthetic_trace():
    settings = [DEFAULT, FAST]
    trace = synthetic_trace(2, 3, settings, 4, seed=5)
    workload = trace.workloads()[1]
    config = json.loads(trace.configs(workload)[0])
    backend = ReplayBackend(trace, workload)
    probe = SegmentRequest("x", DEFAULT, 1, Role.PROBE, config, "c", "l", True)
    result = backend.run_segment(probe, ignore)
    assert result.energy.source == "synthetic" and result.stints[0].profile is not None
    rest = SegmentRequest("x", FAST, 3, Role.TRAIN, config, "c", "l")
    expected = trace.epochs(workload, config, FAST)[1:]
    got = backend.run_segment(rest, ignore).epochs
    assert [e.accuracy for e in got] == [r.accuracy for r in expected]
