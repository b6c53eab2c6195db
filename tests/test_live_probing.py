"""Probing in place: live candidates in the running process, restart candidates only when they
can pay, warm-up re-measures; the replay's stints and live switches; the steady epoch time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipetune.backends.events import epoch_report, steady_epoch_s
from pipetune.config import ProbingConfig, load_config
from pipetune.journal import read_events
from pipetune.probing.history import TrialHistory
from pipetune.probing.plan import Phase, PipelinedPlan
from pipetune.progress import Progress
from pipetune.records import (
    Decision,
    Energy,
    EpochReport,
    Mode,
    Pause,
    Role,
    SegmentRecord,
    SegmentRequest,
    SystemSetting,
)
from pipetune.replay import COLUMNS, ReplayBackend, Trace
from pipetune.replay.runner import replay_job
from pipetune.store.base import NullStore
from pipetune.tuner import Tuner
from tests.conftest import write_project

C1 = SystemSetting.of({"cores": "1", "memory": "2g"})
C2 = SystemSetting.of({"cores": "2", "memory": "2g"})
MEM = SystemSetting.of({"cores": "2", "memory": "1g"})
LIVE = frozenset({"cores"})

# ------------------------------------------------------------------------------ the plan


def epoch(n: int, duration: float, steady: float | None = None) -> EpochReport:
    return EpochReport(
        n, duration, 0.0, None, 0.1 * n, 100, {}, Energy(duration, "estimate"), steady_s=steady
    )


def probe(
    index: int,
    setting: SystemSetting,
    duration: float,
    steady: float | None = None,
    *,
    startup: float = 0.0,
    process: int = 1,
) -> SegmentRecord:
    """The trial's epoch index + 1, probed at `setting` in `process`."""
    e = epoch(index + 1, duration, steady)
    return SegmentRecord(
        index, setting, Role.PROBE, (e,), startup + duration, e.energy, process=process
    )


def cores_plan(epochs: int = 4, **probing: Any) -> PipelinedPlan:
    """Candidates cores=1 (the default) then cores=2, memory fixed, cores live."""
    return PipelinedPlan(
        epochs, [C1, C2], ProbingConfig(**{"window": "epoch", **probing}), live=LIVE, widest=C2
    )


def test_a_live_trial_is_one_process_launched_at_the_widest_cores():
    plan = cores_plan()
    first = plan.next_segment(TrialHistory([]))
    assert first is not None
    assert (first.setting, first.role, first.epochs, first.decide_after) == (C1, Role.PROBE, 4, 1)
    assert first.launch == C2  # so that cores=2 fits in the process later
    # after the profiling epoch: probe cores=2 live in the same process, pausing after it
    history = [probe(0, C1, 10.0, 9.0, startup=30.0)]
    step = plan.at_pause(TrialHistory(history), C1)
    assert (step.setting, step.role, step.pause_after) == (C2, Role.PROBE, 1)
    assert step.go_on and step.why.endswith("(live)")
    # cores=2 is clearly faster by its steady pace (though not by its whole epoch): train there
    history.append(probe(1, C2, 11.0, 4.0))
    train = plan.at_pause(TrialHistory(history), C2)
    assert (train.setting, train.role, train.pause_after) == (C2, Role.TRAIN, 0)
    assert plan.phase(TrialHistory(history)) is Phase.SETTLED
    assert [p.epoch_s for p in plan.probes(TrialHistory(history))] == [9.0, 4.0]  # the steady times
    assert plan.not_probed(TrialHistory(history)) == []


def test_the_steady_time_decides_only_where_the_app_reports_it():
    plan = cores_plan()
    history = [probe(0, C1, 10.0, startup=30.0), probe(1, C2, 11.0)]  # no iteration times
    assert (
        plan.at_pause(TrialHistory(history), C2).setting == C1
    )  # by the whole epochs: the default is faster


def test_a_candidate_barely_ahead_makes_the_plan_measure_the_default_again():
    plan = cores_plan()
    history = [probe(0, C1, 10.0, 9.0, startup=30.0), probe(1, C2, 10.0, 8.0)]
    # 8 s against 9 s: less than the warm-up margin (50 %) ahead, in the same process
    again = plan.at_pause(TrialHistory(history), C2)
    assert (again.setting, again.role, again.pause_after) == (C1, Role.PROBE, 1)
    assert "measuring the default" in again.why and again.why.endswith("(live)")
    assert plan.phase(TrialHistory(history)) is Phase.PROBING
    # warm, the default does 7 s: its latest measurement is the one compared
    history.append(probe(2, C1, 8.0, 7.0))
    final = plan.at_pause(TrialHistory(history), C1)
    assert (final.setting, final.role, final.pause_after) == (C1, Role.TRAIN, 0)
    assert [(p.setting, p.epoch_s) for p in plan.probes_for_choice(TrialHistory(history))] == [
        (C1, 7.0),
        (C2, 8.0),
    ]
    assert [p.epoch_s for p in plan.probes(TrialHistory(history))] == [
        9.0,
        8.0,
        7.0,
    ]  # every probe epoch
    assert plan.chosen(TrialHistory(history))[0] == C1


def test_the_default_is_re_measured_once_at_most():
    plan = cores_plan(6)  # epochs enough for another probe
    history = [probe(0, C1, 10.0, 9.0, startup=30.0), probe(1, C2, 10.0, 8.0)]
    assert plan.at_pause(TrialHistory(history), C2).setting == C1
    history.append(probe(2, C1, 9.0, 8.5))  # warm, still barely behind
    final = plan.at_pause(TrialHistory(history), C1)
    assert (final.setting, final.role, final.pause_after) == (C2, Role.TRAIN, 0)


def test_a_candidate_ahead_only_across_processes_is_not_re_measured():
    plan = cores_plan()
    history = [
        probe(0, C1, 10.0, 9.0, startup=30.0, process=1),
        probe(1, C2, 10.0, 8.0, startup=30.0, process=2),
    ]
    step = plan.at_pause(TrialHistory(history), C2)
    assert (step.setting, step.role) == (C2, Role.TRAIN)  # both measured in fresh processes


def test_a_slower_candidate_keeps_the_default_without_a_re_measure():
    plan = cores_plan()
    history = [probe(0, C1, 10.0, 9.0, startup=30.0), probe(1, C2, 13.0, 12.0)]
    back = plan.at_pause(TrialHistory(history), C2)
    assert (back.setting, back.role, back.pause_after) == (C1, Role.TRAIN, 0)
    assert back.why.endswith("(live)")  # back to the default live, no restart
    assert len(plan.probes(TrialHistory(history))) == 2


def test_live_candidates_are_probed_before_restart_ones():
    plan = PipelinedPlan(5, [C2, MEM, C1], ProbingConfig(window="epoch"), live=LIVE)
    assert [c.label() for c in plan.candidates] == [
        "cores=2,memory=2g",
        "cores=1,memory=2g",
        "cores=2,memory=1g",
    ]


def memory_plan(epochs: int, **probing: Any) -> PipelinedPlan:
    """Default cores=2,2g, then memory 1g: a restart candidate."""
    return PipelinedPlan(
        epochs, [C2, MEM], ProbingConfig(**{"window": "epoch", **probing}), live=LIVE, widest=C2
    )


def test_a_restart_candidate_that_cannot_pay_is_not_probed_and_says_why():
    plan = memory_plan(4)
    history = [probe(0, C2, 10.0, startup=30.0)]
    assert plan.phase(TrialHistory(history)) is Phase.SETTLED
    stay = plan.at_pause(TrialHistory(history), C2)
    assert (stay.setting, stay.role, stay.pause_after) == (C2, Role.TRAIN, 0)
    [skipped] = plan.not_probed(TrialHistory(history))
    assert skipped["setting"] == "cores=2,memory=1g"
    # 2 epochs after it, 25 % faster: 5 s saved, less than two 30 s start-ups
    assert "needs a restart (memory)" in skipped["why"]
    assert "would save 5 s" in skipped["why"] and "(60 s)" in skipped["why"]


def test_a_finished_trial_still_says_which_candidates_were_not_probed():
    plan = memory_plan(4)
    history = [probe(0, C2, 10.0, startup=30.0)]
    trained = (epoch(2, 10.0), epoch(3, 10.0), epoch(4, 10.0))
    history.append(SegmentRecord(1, C2, Role.TRAIN, trained, 30.0, Energy.zero(), process=1))
    assert plan.phase(TrialHistory(history)) is Phase.DONE
    assert [n["setting"] for n in plan.not_probed(TrialHistory(history))] == ["cores=2,memory=1g"]


def test_not_probed_says_why_as_it_stood_when_the_candidate_was_passed_over():
    """A default measured again after the live probes does not change why the restart
    candidate was left out: the epochs left when it was next in line."""
    plan = PipelinedPlan(4, [C2, C1, MEM], ProbingConfig(window="epoch"), live=LIVE, widest=C2)
    history = [probe(0, C2, 7.5, 4.7, startup=12.0), probe(1, C1, 5.4, 4.2)]
    recheck = plan.next_segment(TrialHistory(history))
    assert recheck is not None and (recheck.setting, recheck.role) == (C2, Role.PROBE)
    history.append(probe(2, C2, 2.3, 1.8))
    trained = (epoch(4, 2.7),)
    history.append(SegmentRecord(3, C2, Role.TRAIN, trained, 2.7, Energy.zero(), process=1))
    [skipped] = plan.not_probed(TrialHistory(history))
    assert skipped["setting"] == MEM.label()
    assert "1 epoch(s) after it" in skipped["why"], skipped["why"]


def test_a_restart_candidate_is_probed_when_always_asked():
    plan = memory_plan(4, restart_probes="always")
    history = [probe(0, C2, 10.0, startup=30.0)]
    assert plan.phase(TrialHistory(history)) is Phase.PROBING
    stop = plan.at_pause(TrialHistory(history), C2)
    assert stop.setting is None and not stop.go_on
    assert "needs a restart" in stop.why
    nxt = plan.next_segment(TrialHistory(history))
    assert nxt is not None and (nxt.setting, nxt.role, nxt.epochs) == (MEM, Role.PROBE, 3)
    assert plan.not_probed(TrialHistory(history)) == []


def test_a_restart_candidate_is_probed_when_it_can_pay():
    # 38 epochs after it, 25 % of a 10 s epoch each: 95 s, more than two 2 s start-ups
    plan = memory_plan(40)
    history = [probe(0, C2, 10.0, startup=2.0)]
    stop = plan.at_pause(TrialHistory(history), C2)
    assert stop.setting is None and "needs a restart" in stop.why
    assert plan.next_segment(TrialHistory(history)).setting == MEM
    # ... but not when start-ups are long (95 s < two 60 s ones), nor under "never"
    slow = [probe(0, C2, 10.0, startup=60.0)]
    assert memory_plan(40).at_pause(TrialHistory(slow), C2).setting == C2
    never = memory_plan(40, restart_probes="never")
    assert never.at_pause(TrialHistory(history), C2).setting == C2
    assert "restart_probes is never" in never.not_probed(TrialHistory(history))[0]["why"]


def test_without_live_every_candidate_is_a_restart_and_is_probed():
    plan = PipelinedPlan(4, [C2, MEM], ProbingConfig(live=False), live=LIVE, widest=C2)
    assert plan.live == frozenset()
    history = [probe(0, C2, 10.0, startup=30.0)]
    assert plan.at_pause(TrialHistory(history), C2).setting is None
    assert plan.next_segment(TrialHistory([])).launch is None


# ---------------------------------------------------------------------------- the replay

HP = {"batch_size": 64, "learning_rate": 0.05, "learning_rate_decay": 0.0}
STARTUP = {C1: 20.0, C2: 25.0}
COLD = {C1: 30.0, C2: 20.0}  # epoch 1 (a fresh process)
WARM = {C1: 15.0, C2: 10.0}  # epochs 2..4


def live_trace(live: str = "cores", switch_s: float = 0.5) -> Trace:
    rows = [
        {
            "workload": "lenet5",
            "config": json.dumps(HP, sort_keys=True, separators=(",", ":")),
            "setting": setting.label(),
            "epoch": e,
            "duration_s": COLD[setting] if e == 1 else WARM[setting] + 0.1 * e,
            "eval_s": 1.0,
            "energy_j": 100.0 * e,
            "energy_source": "rapl",
            "accuracy": 0.2 * e,
            "loss": 1.0 / e,
            "steady_s": 0.8 * COLD[setting] if e == 1 else WARM[setting] + 0.1 * e,
            "samples": 1000,
            "startup_s": STARTUP[setting],
            "switch_s": switch_s,
            "live": live,
            "profile": None,
            "synthetic": False,
        }
        for setting in (C1, C2)
        for e in range(1, 5)
    ]
    return Trace(pd.DataFrame(rows, columns=list(COLUMNS)))


def test_a_live_switch_makes_two_stints_of_one_process():
    trace = live_trace()
    backend = ReplayBackend(trace, "lenet5")
    request = SegmentRequest(
        "t1", C1, 3, Role.PROBE, dict(HP), "ckpt", "log", decide_after=1, launch=C2
    )
    seen: list[tuple[int, SystemSetting, Role]] = []
    pauses: list[Pause] = []

    def decide(pause: Pause) -> Decision:
        pauses.append(pause)
        return Decision(C2, Role.TRAIN, 0, "test")

    result = backend.run_segment(request, lambda e, s, r: seen.append((e.epoch, s, r)), decide)
    assert seen == [(1, C1, Role.PROBE), (2, C2, Role.TRAIN), (3, C2, Role.TRAIN)]
    [pause] = pauses
    # the process was launched at cores=2: its start-up is that group's
    assert (pause.setting, pause.role, [e.epoch for e in pause.epochs]) == (C1, Role.PROBE, [1])
    assert pause.wall_s == pytest.approx(STARTUP[C2] + COLD[C1] + 1.0)
    first, second = result.stints
    assert (first.setting, first.role, first.wall_s) == (C1, Role.PROBE, pause.wall_s)
    assert first.startup_s == pytest.approx(STARTUP[C2]) and first.switch_s == 0.0
    assert (second.setting, second.role) == (C2, Role.TRAIN)
    assert [e.epoch for e in second.epochs] == [2, 3]
    # the process stays warm: epoch 2 costs cores=2's recorded epoch 2, not its cold epoch 1
    assert second.epochs[0].duration_s == pytest.approx(WARM[C2] + 0.2)
    assert second.epochs[0].steady_s == pytest.approx(WARM[C2] + 0.2)
    assert second.epochs[0].accuracy == pytest.approx(0.4)
    assert second.switch_s == 0.5 and second.startup_s == pytest.approx(0.5)
    assert second.wall_s == pytest.approx(0.5 + (WARM[C2] + 0.2 + 1.0) + (WARM[C2] + 0.3 + 1.0))
    # the switch's energy: its 0.5 s at the rate of cores=2's epoch 1 (100 J over 21 s)
    assert second.energy.joules == pytest.approx(200.0 + 300.0 + 0.5 * 100.0 / 21.0)
    assert result.wall_s == pytest.approx(first.wall_s + second.wall_s)
    assert [e.epoch for e in result.epochs] == [1, 2, 3]
    assert backend.progress("t1") == 3


def test_a_stop_at_a_pause_ends_the_process_after_one_stint():
    backend = ReplayBackend(live_trace(), "lenet5")
    request = SegmentRequest("t1", C1, 4, Role.PROBE, dict(HP), "c", "l", decide_after=1)
    result = backend.run_segment(request, lambda *a: None, lambda p: Decision(None))
    [only] = result.stints
    assert [e.epoch for e in only.epochs] == [1] and backend.progress("t1") == 1
    assert only.wall_s == pytest.approx(STARTUP[C1] + COLD[C1] + 1.0)
    # the next process pays the warm-up on its first epoch, whatever its number
    nxt = backend.run_segment(
        SegmentRequest("t1", C2, 1, Role.PROBE, dict(HP), "c", "l"), lambda *a: None
    )
    assert [e.epoch for e in nxt.epochs] == [2]
    assert nxt.epochs[0].duration_s == COLD[C2] and nxt.epochs[0].accuracy == pytest.approx(0.4)


def test_a_paused_process_has_no_profile_unless_asked():
    rows = live_trace().frame
    profile = {"features": {"task-clock": 900.0}, "source": "perf", "window_s": 30.0}
    rows.loc[rows["epoch"] == 1, "profile"] = json.dumps(profile)
    backend = ReplayBackend(Trace(rows), "lenet5")
    assert backend.profile() is not None
    request = SegmentRequest("t1", C1, 3, Role.PROBE, dict(HP), "c", "l", decide_after=1)
    result = backend.run_segment(request, lambda *a: None, lambda p: Decision(C2, Role.TRAIN))
    assert all(s.profile is None for s in result.stints) and not result.notes
    assert [s.profile for s in result.stints] == [None, None]


def live_config(tmp_path: Path, window: str = "epoch") -> Any:
    probing: dict[str, Any] = {"window": window}
    if window == "iterations":
        probing |= {"window_warmup": 3, "window_min": 2}  # windows of 5 in 16-iteration epochs
    conf = {
        "systemParameters": {"cores": ["1", "2"], "memory": ["2g"]},
        "search": {"trials": 1, "epochs": 4, "seed": 0},
        "probing": probing,
    }
    return load_config(write_project(tmp_path, conf))


def replay_tuner(config: Any, run_dir: Path) -> Tuner:
    """The real tuner over `live_trace()`, one trial at HP."""
    backend = ReplayBackend(live_trace(), "lenet5")
    progress = Progress(quiet=True)
    store = NullStore()
    return Tuner(config, Mode.PIPETUNE, backend, store, progress, run_dir, "trace", configs=[HP])


def test_the_tuner_runs_a_live_trial_in_one_process(tmp_path: Path):
    config = live_config(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = replay_tuner(config, run_dir).run()
    [trial] = summary["trials"]
    assert trial["processes"] == 1
    assert trial["system"]["chosen"] == {"cores": "2", "memory": "2g"}
    [switch] = trial["system"]["switches"]
    assert (switch["how"], switch["epoch"], switch["overhead_s"]) == ("live", 1, 0.5)
    assert (switch["from"], switch["to"]) == (C1.as_dict(), C2.as_dict())
    assert [(p["epoch"], p["how"]) for p in trial["system"]["probes"]] == [
        (1, "new process"),
        (2, "live"),
    ]
    # one start-up (launched at cores=2), epoch 1 cold at cores=1, the switch, 3 warm epochs
    warm = sum(WARM[C2] + 0.1 * e + 1.0 for e in (2, 3, 4))
    assert trial["time"]["total_s"] == pytest.approx(STARTUP[C2] + COLD[C1] + 1.0 + 0.5 + warm)
    events = read_events(run_dir / "journal.jsonl")
    assert [(e["epoch"], e["how"]) for e in events if e["type"] == "switch"] == [(1, "live")]
    done = [e for e in events if e["type"] == "segment_done"]
    assert [(d["role"], d["process"], len(d["epochs"])) for d in done] == [
        ("probe", 1, 1),
        ("probe", 1, 1),
        ("train", 1, 2),
    ]
    decisions = [(d["go_on"], d["to"], d["role"]) for d in events if d["type"] == "decision"]
    assert decisions == [(True, C2.as_dict(), "probe"), (True, C2.as_dict(), "train")]


def test_window_probes_run_inside_epoch_2_of_the_one_process(tmp_path: Path):
    # Epoch 1 warms up at the launch setting (cores=2); in epoch 2 cores=2 is measured first
    # (no switch), then the default cores=1, slower though later: no re-measure; the rest
    # of epoch 2 and epochs 3-4 train at cores=2. 1,000 samples at batch 64: 16 iterations
    # an epoch; 0.3 × 16 = 4 is less than the least a window takes (3 warm-up + 2 measured,
    # as this test's config says).
    config = live_config(tmp_path, window="iterations")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    [trial] = replay_tuner(config, run_dir).run()["trials"]
    assert trial["processes"] == 1 and trial["epochs"] == 4 and trial["probe_epochs"] == 0
    assert trial["system"]["chosen"] == C2.as_dict() and trial["system"]["source"] == "probed"
    probes = trial["system"]["probes"]
    assert [(p["setting"]["cores"], p["how"], p["epoch"]) for p in probes] == [
        ("2", "window", 2),
        ("1", "window", 2),
    ]
    pace = {C1: (WARM[C1] + 0.2) / 16, C2: (WARM[C2] + 0.2) / 16}
    for p in probes:
        w = p["window"]
        assert (w["iterations"], w["warmup_iterations"], w["chunks"]) == (2, 3, 1)
        assert w["s_per_iteration"] == pytest.approx(pace[SystemSetting.of(p["setting"])])
        assert p["steady_s"] == pytest.approx(16 * w["s_per_iteration"], rel=1e-3, abs=1e-3)
    hops = [
        (s["from"]["cores"], s["to"]["cores"], s.get("inside_epoch"))
        for s in trial["system"]["switches"]
    ]
    assert hops == [("2", "1", True), ("1", "2", True)]
    # epoch 2 costs its windows plus the rest (6 of 16 iterations) at cores=2
    windows = 5 * pace[C2] + 5 * pace[C1]
    epoch2 = windows + 6 / 16 * (WARM[C2] + 0.2) + 1.0
    warm = epoch2 + sum(WARM[C2] + 0.1 * e + 1.0 for e in (3, 4))
    switches = 2 * 0.5
    assert trial["time"]["total_s"] == pytest.approx(
        STARTUP[C2] + COLD[C2] + 1.0 + warm + switches, abs=1e-3
    )
    events = read_events(run_dir / "journal.jsonl")
    done = [e for e in events if e["type"] == "segment_done"]
    assert [(d["role"], len(d["epochs"]), bool(d["window"])) for d in done] == [
        ("warmup", 1, False),
        ("probe", 0, True),
        ("probe", 0, True),
        ("train", 3, False),
    ]
    asked = [d.get("iterations", 0) for d in events if d["type"] == "decision"]
    assert asked == [5, 5, 0]


def test_a_trace_without_live_restarts_at_each_change(tmp_path: Path):
    # replay_job applies the trace's `live`: with none recorded, each probe is its own process
    config = live_config(tmp_path)
    restart = replay_job(live_trace(live=""), "lenet5", config, "pipetune", 0)
    [trial] = restart.summary["trials"]
    assert trial["processes"] == 2
    assert [s["how"] for s in trial["system"]["switches"]] == ["restart"]
    live = replay_job(live_trace(), "lenet5", config, "pipetune", 0)
    assert live.summary["trials"][0]["processes"] == 1
    assert live.tuning_s < restart.tuning_s


# ------------------------------------------------------------------ the steady epoch time


def test_steady_epoch_time_is_the_second_halfs_median_times_the_count():
    assert steady_epoch_s([1.0, 1.0, 3.0, 3.0]) == 12.0
    assert steady_epoch_s([9.0, 5.0, 2.0, 1.0, 4.0]) == 2.0 * 5  # median of [2, 1, 4]
    assert steady_epoch_s([5, 4, 2, 2, 2, 2]) == 12.0  # whole numbers are times too
    for bad in (
        None,
        "1,2,3,4",
        [1.0, 2.0, 3.0],
        [],
        [1.0, 2.0, 0.0, 3.0],
        [1.0, -2.0, 3.0, 4.0],
        [1.0, 2.0, "3", 4.0],
        [1.0, 2.0, math.nan, 4.0],
        {"a": 1.0},
    ):
        assert steady_epoch_s(bad) is None, bad


def test_an_epoch_event_carries_its_steady_time_and_system():
    event = {
        "event": "epoch",
        "epoch": 2,
        "duration_s": 10.0,
        "accuracy": 0.5,
        "iteration_s": [2.0, 1.0, 1.0, 1.0],
        "system": {"cores": 2, "cpus": [0, 1]},
    }
    report = epoch_report(event, Energy(5.0, "rapl"))
    assert report.steady_s == 4.0 and report.system == {"cores": 2, "cpus": [0, 1]}
    plain = epoch_report(
        {k: v for k, v in event.items() if k not in ("iteration_s", "system")}, Energy.zero()
    )
    assert plain.steady_s is None and plain.system == {}


def test_a_skipped_restart_candidate_is_in_the_summary_and_journal(tmp_path: Path):
    conf = {
        "systemParameters": {"cores": ["1", "2"], "memory": ["2g", "1g"]},
        "search": {"trials": 1, "epochs": 4, "seed": 0},
    }
    config = load_config(write_project(tmp_path, conf))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # the trace has no memory=1g group: it must not be probed
    [trial] = replay_tuner(config, run_dir).run()["trials"]
    assert trial["processes"] == 1 and trial["system"]["chosen"] == C2.as_dict()
    assert [n["setting"] for n in trial["system"]["not_probed"]] == ["cores=1,memory=1g"]
    events = read_events(run_dir / "journal.jsonl")
    assert [e["type"] for e in events].count("not_probed") == 1
