"""Window probes: the pace of a window, its interval, and the plan's steps and choice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipetune.backends.events import log_spread, window_report
from pipetune.config import ConfigError, load_config
from pipetune.config_probing import ProbingConfig
from pipetune.contract import EventError
from pipetune.probing import window, window_plan
from pipetune.probing.history import Recognized, TrialHistory
from pipetune.probing.objective import Objective
from pipetune.probing.plan import Phase, PipelinedPlan
from pipetune.records import (
    Energy,
    EpochReport,
    Role,
    SegmentRecord,
    SystemSetting,
    WindowReport,
)
from pipetune.results import trial_summary
from pipetune.run_state import TrialState
from tests.conftest import write_project

C1 = SystemSetting.of({"cores": "1"})
C2 = SystemSetting.of({"cores": "2"})
LIVE = frozenset({"cores"})
PER_EPOCH = 60  # iterations in an epoch: a window is capped at 0.3 × 60 = 18


def warmup_epoch(setting: SystemSetting = C2, spread: float | None = None) -> SegmentRecord:
    e = EpochReport(
        1,
        6.0,
        0.5,
        1.0,
        0.8,
        7680,
        {},
        Energy(60.0, "rapl"),
        iterations=PER_EPOCH,
        iteration_spread=spread,
    )
    return SegmentRecord(0, setting, Role.WARMUP, (e,), 20.0, e.energy, process=1)


def chunk(
    index: int, setting: SystemSetting, times: list[float], warmup: int = 3, joules: float = 10.0
) -> SegmentRecord:
    w = WindowReport(2, tuple(times), warmup, PER_EPOCH, Energy(joules, "rapl"))
    return SegmentRecord(index, setting, Role.PROBE, (), sum(times), w.energy, process=1, window=w)


def noisy(pace: float, n: int, spread: float = 0.1) -> list[float]:
    """n iteration times around `pace`, alternating ±spread (deterministic)."""
    return [pace * (1 + spread * (1 if i % 2 else -1)) for i in range(n)]


# ------------------------------------------------------------------------------ the pace


def test_a_pace_is_the_geometric_mean_with_a_t_interval_on_the_logs():
    p = window.pace([0.1, 0.4])
    assert p is not None and p.s_per_iteration == pytest.approx(0.2)
    half = 12.71 * math.log(4) / math.sqrt(2) / math.sqrt(2)  # t(1) × sd / √n
    assert p.low_s == pytest.approx(0.2 * math.exp(-half))
    assert p.rel_error == pytest.approx(math.exp(half) - 1)
    assert window.pace([0.1]) is None and window.pace([]) is None
    flat = window.pace([0.05] * 8)
    assert flat is not None and flat.rel_error == 0.0


def test_more_iterations_narrow_the_interval_and_say_how_many_are_needed():
    short, long = window.pace(noisy(0.1, 8, 0.3)), window.pace(noisy(0.1, 32, 0.3))
    assert short is not None and long is not None
    assert long.rel_error < short.rel_error
    need = window.iterations_needed(short, 0.05)
    assert need > 32  # ±30 % per iteration: ±5 % takes many
    assert window.iterations_needed(long, long.rel_error) == 32


# --------------------------------------------------------------------------- the records


def test_consecutive_chunks_at_one_setting_are_one_window_and_the_warmup_is_not_measured():
    history = [
        warmup_epoch(),
        chunk(1, C2, [9.0, 9.0, 9.0, 0.1, 0.1]),
        chunk(2, C2, [0.1, 0.1], warmup=0),
        chunk(3, C1, [0.2] * 5),
        chunk(4, C2, [0.1] * 5),
    ]
    runs = window.window_runs(history)
    assert [[s.index for s in run] for run in runs] == [[1, 2], [3], [4]]
    assert window.measured(runs[0]) == (0.1,) * 4  # the 9 s warm-up iterations are out
    assert window.warmup_iterations(runs[0]) == 3 and window.used_iterations(runs[0]) == 7
    summary = window.summary(runs[0])
    assert summary["iterations"] == 4 and summary["warmup_iterations"] == 3
    assert summary["s_per_iteration"] == pytest.approx(0.1) and summary["chunks"] == 2
    # energy per measured iteration: each chunk's energy at its mean power
    assert summary["energy_j_per_iteration"] == pytest.approx((10 * 0.2 / 27.2 + 10) / 4, rel=1e-4)


def test_a_window_event_is_validated_and_keeps_what_the_decision_did_not_measure():
    event = {"event": "window", "epoch": 2, "iteration_s": [0.2, 0.1, 0.1], "epoch_iterations": 63}
    w = window_report(event, 2, Energy(3.0, "rapl"))
    assert w.measured_s == (0.1,) and w.epoch_iterations == 63
    assert window_report(event, 9, Energy.zero()).warmup == 3  # never more than it ran
    for bad in ({"iteration_s": "0.1"}, {"iteration_s": [0.1, -1]}, {"epoch_iterations": 0}):
        with pytest.raises(EventError):
            window_report({**event, **bad}, 0, Energy.zero())


# ------------------------------------------------------------------------------ the steps


def windows_plan(**probing: object) -> PipelinedPlan:
    """3 warm-up + at least 8 measured iterations a window (not the defaults: the numbers
    below are worked out for these)."""
    config = ProbingConfig(**{"window_warmup": 3, "window_min": 8, **probing})  # type: ignore[arg-type]
    return PipelinedPlan(4, [C1, C2], config, live=LIVE, widest=C2)


def test_the_plan_warms_up_at_the_launch_setting_then_measures_it_first():
    plan = windows_plan()
    first = plan.next_segment(TrialHistory([]))
    assert first is not None and (first.setting, first.role, first.decide_after) == (
        C2,
        Role.WARMUP,
        1,
    )
    history = [warmup_epoch()]
    decision = plan.at_pause(TrialHistory(history), C2)
    # the first window: 3 warm-up + 8 measured, under the cap of 18
    assert (decision.setting, decision.role, decision.iterations, decision.warmup) == (
        C2,
        Role.PROBE,
        11,
        3,
    )


def test_the_first_window_is_as_long_as_the_warm_up_epochs_noise_says_it_needs():
    plan = windows_plan()
    # ±30 % per iteration: ±5 % would take ~145 measured iterations, so the cap at once
    noisy_epoch = plan.at_pause(TrialHistory([warmup_epoch(spread=0.3)]), C2)
    assert noisy_epoch.iterations == 18
    # ±2 %: the minimum already does
    assert plan.at_pause(TrialHistory([warmup_epoch(spread=0.02)]), C2).iterations == 3 + 8
    # ±8 %: 3 warm-up + ⌈(1.96 · 0.08 / ln 1.05)²⌉ = 11 measured
    assert plan.at_pause(TrialHistory([warmup_epoch(spread=0.08)]), C2).iterations == 3 + 11


def test_an_epochs_spread_is_that_of_its_second_halfs_log_times():
    assert log_spread([9.0, 9.0, 0.1, 0.1]) == 0.0
    assert log_spread([1.0, 1.0, 1.0, math.e]) == pytest.approx(math.sqrt(0.5))
    assert log_spread([0.1, 0.2, 0.3]) is None and log_spread(None) is None
    assert log_spread([0.1, 0.0, 0.1, 0.1]) is None


def test_windows_leave_at_least_as_much_training_after_them_as_they_take():
    # 3 epochs of 20 iterations: after the warm-up epoch 40 are left, so a window may take 20
    per_epoch = 20
    e = EpochReport(1, 2.0, 0.1, 1.0, 0.8, 640, {}, Energy(9.0, "rapl"), iterations=per_epoch)
    warm = SegmentRecord(0, C2, Role.WARMUP, (e,), 9.0, e.energy, process=1)
    plan = PipelinedPlan(3, [C1, C2], ProbingConfig(window_min=30), live=LIVE, widest=C2)
    first = plan.at_pause(TrialHistory([warm]), C2)
    assert (first.setting, first.iterations) == (C2, 20)
    w = WindowReport(2, (0.1,) * 20, 4, per_epoch, Energy(2.0, "rapl"))
    done = SegmentRecord(1, C2, Role.PROBE, (), 2.0, w.energy, process=1, window=w)
    second = plan.at_pause(TrialHistory([warm, done]), C2)
    assert (second.setting, second.iterations) == (C1, 10)  # 20 left: 10 for the window
    w1 = WindowReport(2, (0.2,) * 10, 4, per_epoch, Energy(2.0, "rapl"))
    late = SegmentRecord(2, C1, Role.PROBE, (), 2.0, w1.energy, process=1, window=w1)
    # 10 left: a window of 5 leaves no room for 4 warm-up + 2 measured, so it settles
    settle = plan.at_pause(TrialHistory([warm, done, late]), C1)
    assert (settle.setting, settle.role, settle.iterations) == (C2, Role.TRAIN, 0)


def test_a_window_grows_until_it_is_precise_enough_or_at_its_cap():
    plan = windows_plan(window_error=0.05)
    history = [warmup_epoch(), chunk(1, C2, [0.5] * 3 + noisy(0.1, 8, 0.3))]
    more = plan.at_pause(TrialHistory(history), C2)
    assert more.setting == C2 and more.warmup == 0 and more.iterations == 18 - 11
    history.append(chunk(2, C2, noisy(0.1, 7, 0.3), warmup=0))
    nxt = plan.at_pause(
        TrialHistory(history), C2
    )  # at the cap: on to the next setting, imprecise or not
    assert (nxt.setting, nxt.iterations, nxt.warmup) == (C1, 11, 3)
    precise = windows_plan(window_error=0.5)
    assert precise.at_pause(TrialHistory(history[:2]), C2).setting == C1  # ±50 % is met at once


def test_a_later_window_that_wins_makes_the_plan_measure_the_first_again():
    plan = windows_plan()
    history = [warmup_epoch(), chunk(1, C2, [1.0] * 3 + [0.10] * 8)]
    history.append(chunk(2, C1, [1.0] * 3 + [0.08] * 8))  # later, so maybe only warmer
    again = plan.at_pause(TrialHistory(history), C1)
    assert (again.setting, again.role, again.iterations) == (C2, Role.PROBE, 11)
    assert "again" in again.why
    history.append(chunk(3, C2, [1.0] * 3 + [0.09] * 8))
    assert plan.phase(TrialHistory(history)) is Phase.SETTLED
    settle = plan.at_pause(TrialHistory(history), C2)
    # pooled, cores=2 is (0.10 · 0.09)^½ ≈ 0.095 s: cores=1 wins by 16 %, no spread at all
    assert (settle.setting, settle.role, settle.iterations) == (C1, Role.TRAIN, 0)
    assert plan.chosen(TrialHistory(history)) == (C1, plan.chosen(TrialHistory(history))[1])


def test_a_later_window_that_loses_lost_for_real_and_the_first_is_kept():
    plan = windows_plan()
    history = [warmup_epoch(), chunk(1, C2, [1.0] * 3 + [0.06] * 8)]
    history.append(chunk(2, C1, [1.0] * 3 + [0.08] * 8))
    settle = plan.at_pause(TrialHistory(history), C1)
    assert (settle.setting, settle.role) == (C2, Role.TRAIN)  # no re-measure: C2 stayed ahead
    assert "beats the default" in settle.why


def test_candidates_too_close_for_the_noise_keep_the_default_and_say_so():
    plan = windows_plan()
    history = [warmup_epoch(), chunk(1, C2, [1.0] * 3 + noisy(0.095, 15, 0.4))]
    history.append(chunk(2, C1, [1.0] * 3 + noisy(0.1, 15, 0.4)))  # both at the cap
    settle = plan.at_pause(TrialHistory(history), C1)
    assert settle.setting == C1 and "keeping the default" in settle.why
    assert "too little to tell them apart" in settle.why


def test_energy_per_iteration_decides_an_energy_objective():
    plan = windows_plan(objective=Objective({"energy": 1.0}))
    history = [warmup_epoch(), chunk(1, C2, [0.06] * 11, joules=40.0)]
    history.append(chunk(2, C1, [0.08] * 11, joules=20.0))  # slower, but half the energy
    assert plan.at_pause(TrialHistory(history), C1).setting == C2  # it won later: cores=2 once more
    history.append(chunk(3, C2, [0.06] * 11, joules=40.0))
    assert plan.at_pause(TrialHistory(history), C2).setting == C1
    [c1, c2] = plan.probes_for_choice(TrialHistory(history))  # the default first
    assert c1.energy_j == pytest.approx(20.0 / 11 * PER_EPOCH)
    assert c2.epoch_s == pytest.approx(0.06 * PER_EPOCH)


def test_a_recognised_job_skips_the_windows():
    plan = windows_plan()
    recognized = Recognized(C1, {"epoch_s": 5.0})
    decision = plan.at_pause(TrialHistory([warmup_epoch()], recognized), C2)
    assert (decision.setting, decision.role, decision.iterations) == (C1, Role.TRAIN, 0)


def test_an_app_that_cannot_pause_inside_an_epoch_is_probed_by_epochs():
    plan = windows_plan()
    e = EpochReport(2, 5.0, 0.5, 1.0, 0.9, 7680, {}, Energy(50.0, "rapl"), iterations=60)
    whole = SegmentRecord(1, C2, Role.PROBE, (e,), 5.5, e.energy, process=1)
    history = [warmup_epoch(), whole]
    assert not plan.windowing(TrialHistory(history))
    decision = plan.at_pause(TrialHistory(history), C2)
    assert (decision.setting, decision.iterations, decision.pause_after) == (C1, 0, 1)


def test_window_keys_are_checked_with_their_json_path(tmp_path: Path):
    conf = {
        "probing": {
            "window": "batches",
            "window_min": 1,
            "window_warmup": -1,
            "window_max_share": 1.5,
            "window_confidence": 1.0,
        }
    }
    with pytest.raises(ConfigError) as err:
        load_config(write_project(tmp_path, conf))
    text = str(err.value)
    for path in (
        "$.probing.window",
        "$.probing.window_min",
        "$.probing.window_warmup",
        "$.probing.window_max_share",
        "$.probing.window_confidence",
    ):
        assert path in text
    ok = load_config(write_project(tmp_path, {"probing": {"window": "epoch"}}))
    assert ok.probing.window == "epoch" and ok.probing.window_warmup == 4
    assert json.loads(json.dumps(ok.probing.window_confidence)) == 0.9


def test_the_cap_is_a_share_of_an_epoch_but_never_below_the_least_a_window_measures():
    probing = ProbingConfig(window_warmup=3, window_min=8)
    assert window_plan.cap(probing, [warmup_epoch()]) == 18  # 0.3 × 60
    short = ProbingConfig(window_warmup=3, window_min=8, window_max_share=0.05)
    assert window_plan.cap(short, [warmup_epoch()]) == 3 + 8
    assert window_plan.cap(probing, []) == 3 + 8  # epoch size unknown yet


def test_a_trials_time_counts_a_window_once_even_where_an_epoch_ended_inside_it():
    def ep(n: int, wall: float) -> EpochReport:
        return EpochReport(n, wall - 0.5, 0.5, 1.0, 0.2 * n, 7680, {}, Energy(wall, "rapl"))

    warm = SegmentRecord(0, C2, Role.WARMUP, (ep(1, 6.5),), 20.0, Energy(20, "rapl"), process=1)
    w2 = WindowReport(2, (0.1,) * 18, 4, PER_EPOCH, Energy(2.0, "rapl"))
    first = SegmentRecord(1, C2, Role.PROBE, (), 2.0, w2.energy, process=1, window=w2)
    # the second window ran to epoch 2's end: the epoch is reported inside it
    w1 = WindowReport(2, (0.15,) * 18, 4, PER_EPOCH, Energy(3.0, "rapl"))
    second = SegmentRecord(2, C1, Role.PROBE, (ep(2, 5.5),), 3.0, w1.energy, process=1, window=w1)
    rest = SegmentRecord(
        3, C2, Role.TRAIN, (ep(3, 6.0), ep(4, 6.0)), 12.0, Energy(12, "rapl"), process=1
    )
    trial = TrialState("t000", 0, {}, None, "ckpt", "done", [warm, first, second, rest])
    s = trial_summary(trial, windows_plan(), C1)
    t = s["time"]
    assert t["total_s"] == 37.0 and t["probe_s"] == 5.0  # the two windows' own time
    assert t["train_s"] == 6.5 + 5.5 + 6.0 + 6.0 - 5.0  # the epochs, less the windows in them
    assert t["startup_s"] == 37.0 - t["train_s"] - t["probe_s"]
    assert s["probe_windows"] == 2 and s["probe_epochs"] == 0
    assert [p["how"] for p in s["system"]["probes"]] == ["window", "window"]
    assert [sw.get("inside_epoch") for sw in s["system"]["switches"]] == [True, None]


def test_a_resumed_trial_warms_up_again_and_probes_only_what_it_has_not():
    # process 1 ran the warm-up epoch and cores=2's window, then died; the journal has both
    plan = windows_plan()
    history = [warmup_epoch(), chunk(1, C2, [1.0] * 3 + [0.06] * 15)]
    restart = plan.next_segment(
        TrialHistory(history)
    )  # a new process: no JIT-warm pace to compare with
    assert restart is not None and (restart.role, restart.setting, restart.decide_after) == (
        Role.WARMUP,
        C2,
        1,
    )
    e = EpochReport(2, 6.0, 0.5, 1.0, 0.9, 7680, {}, Energy(60.0, "rapl"), iterations=PER_EPOCH)
    history.append(SegmentRecord(2, C2, Role.WARMUP, (e,), 20.0, e.energy, process=2))
    step = plan.at_pause(TrialHistory(history), C2)
    assert (step.setting, step.role) == (C1, Role.PROBE)  # cores=2 has its window already
