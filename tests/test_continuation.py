"""Continuation: a probe whose setting ends up chosen goes on training without a restart.

Driven through the real tuner over a hand-made trace (ReplayBackend pauses like the app does),
so the plan, the decision, the journal's two records and the accounting are all exercised.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipetune.config import ProbingConfig, load_config
from pipetune.journal import read_events
from pipetune.probing.history import TrialHistory
from pipetune.probing.plan import PipelinedPlan
from pipetune.recognition.service import RecognitionService
from pipetune.records import Energy, EpochReport, Mode, Role, SegmentRecord, SystemSetting
from pipetune.replay import COLUMNS, Trace
from pipetune.replay.runner import replay_job, with_live_of
from pipetune.telemetry.profile import JobProfile
from tests.conftest import write_project

DEFAULT = "cores=2,memory=2g"
CORES1 = "cores=1,memory=2g"
MEM1G = "cores=2,memory=1g"  # one-at-a-time probes: DEFAULT, CORES1, MEM1G (the last)
HP = {"batch_size": 64, "learning_rate": 0.05, "learning_rate_decay": 0.0}
STARTUP = 30.0
PROFILE = JobProfile({"context-switches": 900.0, "proc.cpu_user_s": 1.5}, "proc", 10.0)


def trace(epoch_s: dict[str, float], startup: float = STARTUP) -> Trace:
    rows = [
        {
            "workload": "lenet5",
            "config": json.dumps(HP, sort_keys=True, separators=(",", ":")),
            "setting": setting,
            "epoch": e,
            "duration_s": seconds,
            "eval_s": 0.0,
            "energy_j": 10.0 * seconds,
            "energy_source": "estimate",
            "accuracy": 0.2 * e,
            "loss": 1.0 / e,
            "samples": 1000,
            "startup_s": startup,
            "switch_s": 0.0,
            "profile": json.dumps(PROFILE.to_dict()) if e == 1 else None,
            "synthetic": False,
        }
        for setting, seconds in epoch_s.items()
        for e in range(1, 5)
    ]
    return Trace(pd.DataFrame(rows, columns=list(COLUMNS)))


class Answer(RecognitionService):
    """A service whose look-up answers one fixed result (the model is tested elsewhere)."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.path = None
        self.batch_parameter = "batch_size"
        self.job = "lenet5"
        self.tolerance = 1.0
        self.problem = None
        self.recognizer = None
        self.result = result
        self.learnt: list[Any] = []

    @property
    def available(self) -> bool:
        return True

    def lookup(self, obs: Any) -> dict[str, Any]:
        assert obs is not None and obs.profile.features == PROFILE.features
        return self.result

    def learn(self, obs: Any, probes: list[Any], chosen: Any) -> str:
        self.learnt.append(probes)
        return "noted"


@pytest.fixture
def config(tmp_path: Path) -> Any:
    return load_config(write_project(tmp_path, {"search": {"trials": 1, "epochs": 4, "seed": 0}}))


def run(
    config: Any, epoch_s: dict[str, float], startup: float = STARTUP, **kwargs: Any
) -> dict[str, Any]:
    outcome = replay_job(trace(epoch_s, startup), "lenet5", config, "pipetune", 0, **kwargs)
    return outcome.summary["trials"][0]


def switching(config: Any, rule: str) -> Any:
    return dataclasses.replace(config, probing=dataclasses.replace(config.probing, switch=rule))


def test_the_last_probe_goes_on_when_it_is_the_best(config):
    trial = run(config, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0})
    assert trial["system"]["chosen"] == {"cores": "2", "memory": "1g"}
    assert trial["segments"] == 4 and trial["probe_epochs"] == 3 and trial["epochs"] == 4
    # three start-ups (one per probe process); the last probe's process trained epoch 4 too
    assert trial["time"]["total_s"] == pytest.approx(3 * STARTUP + 10 + 9 + 6 + 6)
    assert trial["time"]["startup_s"] == pytest.approx(3 * STARTUP)


def test_the_last_probe_stops_when_another_setting_is_best(config):
    trial = run(switching(config, "always"), {DEFAULT: 10.0, CORES1: 6.0, MEM1G: 9.0})
    assert trial["system"]["chosen"] == {"cores": "1", "memory": "2g"}
    assert trial["segments"] == 4
    assert trial["time"]["total_s"] == pytest.approx(4 * STARTUP + 10 + 6 + 9 + 6)


def test_a_better_setting_is_switched_to_only_when_the_rest_repays_a_start_up(config):
    times = {DEFAULT: 10.0, CORES1: 6.0, MEM1G: 9.0}
    config = switching(config, "when-it-pays")
    # one epoch left: 3 s saved against a 30 s start-up, so the last probe trains on
    kept = run(config, times)
    assert kept["system"]["chosen"] == {"cores": "2", "memory": "1g"}
    assert kept["time"]["total_s"] == pytest.approx(3 * STARTUP + 10 + 6 + 9 + 9)
    # a 2 s start-up is repaid by the 3 s: restart at the best
    cheap = run(config, times, startup=2.0)
    assert cheap["system"]["chosen"] == {"cores": "1", "memory": "2g"}
    assert cheap["time"]["total_s"] == pytest.approx(4 * 2.0 + 10 + 6 + 9 + 6)


def test_without_continuation_every_segment_restarts(config):
    off = dataclasses.replace(
        config, probing=dataclasses.replace(config.probing, continuation=False)
    )
    trial = run(off, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0})
    assert trial["system"]["chosen"] == {"cores": "2", "memory": "1g"}
    assert trial["time"]["total_s"] == pytest.approx(4 * STARTUP + 10 + 9 + 6 + 6)


def test_a_recognised_default_trains_on_in_the_profiling_process(config):
    hit = {"hit": True, "reason": "test", "setting": {"cores": "2", "memory": "2g"}}
    service = Answer(hit)
    trial = run(config, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0}, recognition=service)
    assert trial["system"]["source"] == "recognized" and trial["probe_epochs"] == 0
    assert trial["segments"] == 2  # the profiling epoch's record, then its training part
    assert trial["time"]["total_s"] == pytest.approx(STARTUP + 4 * 10)  # as v1 would take
    assert service.learnt == [[]]  # a recognised trial teaches no probes


def test_a_recognised_other_setting_restarts_once(config, tmp_path: Path):
    hit = {"hit": True, "reason": "test", "setting": {"cores": "2", "memory": "1g"}}
    trial = run(config, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0}, recognition=Answer(hit))
    assert trial["system"]["chosen"] == {"cores": "2", "memory": "1g"}
    assert trial["time"]["total_s"] == pytest.approx(2 * STARTUP + 10 + 3 * 6)


def test_a_recognised_setting_that_would_not_repay_a_restart_is_not_switched_to(config):
    hit = {
        "hit": True,
        "reason": "test",
        "setting": {"cores": "2", "memory": "1g"},
        "values": {"epoch_s": 6.0},  # 3 epochs × 4 s saved < a 30 s start-up
    }
    trial = run(
        switching(config, "when-it-pays"),
        {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0},
        recognition=Answer(hit),
    )
    assert trial["system"]["source"] == "recognized" and trial["probe_epochs"] == 0
    assert trial["system"]["chosen"] == {"cores": "2", "memory": "2g"}  # trained there
    assert trial["time"]["total_s"] == pytest.approx(STARTUP + 4 * 10)  # as v1
    always = run(config, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0}, recognition=Answer(hit))
    assert always["system"]["chosen"] == {"cores": "2", "memory": "1g"}


def test_a_miss_stops_the_profiling_process_and_probes(config):
    miss = {"hit": False, "reason": "unknown job"}
    trial = run(config, {DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0}, recognition=Answer(miss))
    assert trial["system"]["source"] == "probed" and trial["probe_epochs"] == 3
    assert trial["time"]["total_s"] == pytest.approx(3 * STARTUP + 10 + 9 + 6 + 6)


def test_the_journal_records_the_decision_and_both_parts(config, tmp_path: Path):
    from pipetune.probing.candidates import probe_candidates
    from pipetune.progress import Progress
    from pipetune.replay.backend import ReplayBackend
    from pipetune.store.base import NullStore
    from pipetune.tuner import Tuner

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    t = trace({DEFAULT: 10.0, CORES1: 9.0, MEM1G: 6.0})
    # as replay_job runs it: this trace records nothing as live, so every change is a restart
    tuner = Tuner(
        with_live_of(config, t, "lenet5"),
        Mode.PIPETUNE,
        ReplayBackend(t, "lenet5"),
        NullStore(),
        Progress(quiet=True),
        run_dir,
        "trace",
        configs=[HP],
    )
    tuner.run()
    events = read_events(run_dir / "journal.jsonl")
    decisions = [e for e in events if e["type"] == "decision"]
    # every probe's process pauses after its epoch; the next probe needs a restart (memory, and
    # cores too as this trace was recorded), so the first two stop there and the last goes on
    assert [(d["index"], d["go_on"]) for d in decisions] == [(0, False), (1, False), (2, True)]
    assert all("needs a restart" in d["why"] for d in decisions[:2])
    assert decisions[2]["to"] == {"cores": "2", "memory": "1g"}
    assert decisions[2]["role"] == "train" and "best probed setting" in decisions[2]["why"]
    done = [e for e in events if e["type"] == "segment_done"]
    assert [(d["index"], d["role"], len(d["epochs"])) for d in done] == [
        (0, "probe", 1),
        (1, "probe", 1),
        (2, "probe", 1),
        (3, "train", 1),
    ]
    assert [d["process"] for d in done] == [1, 2, 3, 3]  # the training part: probe 3's process
    assert done[3]["notes"] == {"continued": "in process 3 after segment 2"}
    switches = [(e["epoch"], e["how"]) for e in events if e["type"] == "switch"]
    assert switches == [(1, "restart"), (2, "restart")]
    # epoch by epoch too: the epoch past the pause is training, not a fourth probe
    roles = [(e["epoch"], e["role"]) for e in events if e["type"] == "epoch"]
    assert roles == [(1, "probe"), (2, "probe"), (3, "probe"), (4, "train")]
    assert len(probe_candidates(config.system_parameters, "one-at-a-time")) == 3


def test_plan_asks_for_a_pause_after_every_probe():
    # Every probe's process is launched for the trial's remaining epochs and pauses after its
    # epoch: it goes on when its setting is the one to train at (or the next step is live).
    # (Before in-place probing only the last probe, and the profiling epoch when a model could
    # recognise the job, paused: a probe that could not go on ran one epoch.)
    settings = [SystemSetting.parse(s) for s in (DEFAULT, CORES1, MEM1G)]
    plan = PipelinedPlan(4, settings, ProbingConfig())
    first = plan.next_segment(TrialHistory([]))
    assert first is not None and (first.epochs, first.decide_after) == (4, 1)
    assert first.launch is None  # nothing is live: launched as it runs
    off = PipelinedPlan(4, settings, ProbingConfig(continuation=False))
    first = off.next_segment(TrialHistory([]))
    assert first is not None and (first.epochs, first.decide_after) == (1, 0)

    def probe(index: int, setting: SystemSetting, seconds: float) -> SegmentRecord:
        epoch = EpochReport(index + 1, seconds, 0.0, None, 0.5, 10, {}, Energy(1.0, "estimate"))
        return SegmentRecord(index, setting, Role.PROBE, (epoch,), seconds + 30, Energy.zero())

    history = [probe(0, settings[0], 10.0), probe(1, settings[1], 9.0)]
    last = plan.next_segment(TrialHistory(history))
    assert last is not None and (last.setting, last.epochs, last.decide_after) == (
        settings[2],
        2,
        1,
    )
    best = plan.at_pause(TrialHistory([*history, probe(2, settings[2], 5.0)]), settings[2])
    assert (best.setting, best.role, best.pause_after) == (settings[2], Role.TRAIN, 0)
    beaten = plan.at_pause(TrialHistory([*history, probe(2, settings[2], 12.0)]), settings[2])
    assert not beaten.go_on and "needs a restart" in beaten.why
    more = plan.at_pause(TrialHistory(history[:1]), settings[0])
    assert not more.go_on and more.why.startswith(f"probing {settings[1]}")
