from __future__ import annotations

import pytest

from pipetune.config import ProbingConfig, SystemParameter
from pipetune.config_probing import ProbingStrategy
from pipetune.probing.candidates import probe_budget, probe_candidates
from pipetune.probing.history import TrialHistory
from pipetune.probing.objective import Objective
from pipetune.probing.plan import FixedPlan, Phase, PipelinedPlan
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.records import Energy, EpochReport, Role, SegmentRecord, SettingSource, SystemSetting

PARAMS = (SystemParameter("cores", ("4", "2", "1")), SystemParameter("memory", ("8g", "4g")))


def setting(cores: str, memory: str) -> SystemSetting:
    return SystemSetting.of({"cores": cores, "memory": memory})


def segment(
    index: int,
    s: SystemSetting,
    role: Role,
    first: int,
    durations: list[float],
    joules: float = 1.0,
    error: str | None = None,
) -> SegmentRecord:
    epochs = tuple(
        EpochReport(first + i, d, 0.1, 0.5, 0.9, 100, {}, Energy(joules, "estimate"))
        for i, d in enumerate(durations)
    )
    return SegmentRecord(
        index, s, role, () if error else epochs, 10.0, Energy(joules, "estimate"), error
    )


def test_one_at_a_time_candidates_default_first() -> None:
    assert probe_candidates(PARAMS, "one-at-a-time") == [
        setting("4", "8g"),
        setting("2", "8g"),
        setting("1", "8g"),
        setting("4", "4g"),
    ]
    grid = probe_candidates(PARAMS, ProbingStrategy.GRID)
    assert len(grid) == 6 and grid[0] == setting("4", "8g")


def test_a_name_that_is_no_strategy_is_refused_not_taken_for_one_at_a_time() -> None:
    with pytest.raises(ValueError, match="'random-walk' is not a valid ProbingStrategy"):
        probe_candidates(PARAMS, "random-walk")


def test_objective_weights_only_name_metrics() -> None:
    assert Objective({"energy": 2.0}).describe() == "energy"
    with pytest.raises(ValueError, match=r"expected metrics among \['duration', 'energy'\]"):
        Objective({"joules": 1.0})


def test_budget_never_exceeds_epochs_minus_one() -> None:
    assert probe_budget(4, epochs=10, budget=None) == 4
    assert probe_budget(4, epochs=3, budget=None) == 2
    assert probe_budget(4, epochs=10, budget=2) == 2


def test_best_setting_is_really_selected() -> None:
    probes = [
        ProbeResult(setting("4", "8g"), 10.0, 100.0, "estimate"),
        ProbeResult(setting("2", "8g"), 7.0, 120.0, "estimate"),
        ProbeResult(setting("1", "8g"), 9.0, 60.0, "estimate"),
        ProbeResult(setting("4", "4g"), 5.0, None, "estimate", error="OOM"),
    ]
    assert select_best(probes, Objective({"duration": 1.0})).setting == setting("2", "8g")
    assert select_best(probes, Objective({"energy": 1.0})).setting == setting("1", "8g")
    # 0.5*(7/10) + 0.5*(120/100) = 0.95 ; 0.5*(9/10) + 0.5*(60/100) = 0.75
    assert select_best(probes, Objective({"duration": 0.5, "energy": 0.5})).setting == setting(
        "1", "8g"
    )


def test_ties_keep_the_default() -> None:
    probes = [
        ProbeResult(setting("4", "8g"), 5.0, 1.0, "x"),
        ProbeResult(setting("2", "8g"), 5.0, 1.0, "x"),
    ]
    assert select_best(probes, Objective({"duration": 1.0})).setting == setting("4", "8g")


def test_pipelined_plan_walks_profiling_probing_settled() -> None:
    cands = probe_candidates(PARAMS, "one-at-a-time")
    # one process per probe (no continuation): each probe is its own one-epoch segment
    plan = PipelinedPlan(6, cands, ProbingConfig(continuation=False))
    history: list[SegmentRecord] = []
    assert plan.phase(TrialHistory(history)) is Phase.PROFILING
    durations = {"4": 10.0, "2": 6.0, "1": 8.0}
    for i, cand in enumerate(cands):
        nxt = plan.next_segment(TrialHistory(history))
        assert (
            nxt is not None and nxt.role is Role.PROBE and nxt.epochs == 1 and nxt.setting == cand
        )
        d = durations[cand.as_dict()["cores"]] + (1.0 if cand.as_dict()["memory"] == "4g" else 0.0)
        history.append(segment(i, cand, Role.PROBE, i + 1, [d]))
    assert plan.phase(TrialHistory(history)) is Phase.SETTLED
    final = plan.next_segment(TrialHistory(history))
    assert final is not None and final.role is Role.TRAIN
    assert final.setting == setting("2", "8g") and final.epochs == 2
    assert plan.chosen(TrialHistory(history)) == (setting("2", "8g"), SettingSource.PROBED)
    history.append(segment(4, final.setting, Role.TRAIN, 5, [6.0, 6.0]))
    assert (
        plan.next_segment(TrialHistory(history)) is None
        and plan.phase(TrialHistory(history)) is Phase.DONE
    )


def test_failed_probe_is_skipped_but_failed_default_is_not() -> None:
    cands = probe_candidates(PARAMS, "one-at-a-time")
    plan = PipelinedPlan(3, cands, ProbingConfig(continuation=False))
    assert plan.candidates == cands[:2]
    default_ok = segment(0, cands[0], Role.PROBE, 1, [10.0])
    failed = segment(1, cands[1], Role.PROBE, 2, [], error="OOM")
    assert plan.can_continue_after(failed, TrialHistory([default_ok]))
    nxt = plan.next_segment(TrialHistory([default_ok, failed]))
    assert (
        nxt is not None and nxt.setting == cands[0] and nxt.epochs == 2 and nxt.role is Role.TRAIN
    )
    failed_default = segment(0, cands[0], Role.PROBE, 1, [], error="boom")
    assert not plan.can_continue_after(failed_default, TrialHistory([]))


def test_fixed_plan_runs_every_epoch_in_one_segment() -> None:
    plan = FixedPlan(4, setting("4", "8g"), SettingSource.DEFAULT)
    nxt = plan.next_segment(TrialHistory([]))
    assert nxt is not None and nxt.epochs == 4 and nxt.role is Role.TRAIN
    assert (
        plan.next_segment(TrialHistory([segment(0, setting("4", "8g"), Role.TRAIN, 1, [1.0] * 4)]))
        is None
    )


def test_pipelined_plan_needs_two_epochs() -> None:
    with pytest.raises(ValueError):
        PipelinedPlan(1, [setting("4", "8g")], ProbingConfig())
