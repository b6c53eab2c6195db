"""Recognition as the tuner uses it: the plan, the service's fallbacks, the clustering CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from pipetune.cli import main
from pipetune.config import ProbingConfig
from pipetune.config_recognition import RecognitionConfig
from pipetune.probing.history import Recognized, TrialHistory
from pipetune.probing.objective import Objective
from pipetune.probing.plan import Phase, PipelinedPlan
from pipetune.recognition import Recognizer, RecognizerSettings, save
from pipetune.recognition.service import RecognitionService
from pipetune.records import Energy, EpochReport, Role, SegmentRecord, SettingSource, SystemSetting
from tests.conftest import write_project
from tests.test_recognition_profiles import BEST, KNOWN, observation, training_set

DEFAULT = SystemSetting.of({"cores": "2"})
OTHER = SystemSetting.of({"cores": "1"})


def profiling_segment(obs_profile: dict, joules: float = 50.0) -> SegmentRecord:
    epoch = EpochReport(1, 10.0, 0.5, 0.4, 0.8, 512, {}, Energy(joules, "rapl"))
    return SegmentRecord(
        0, DEFAULT, Role.PROBE, (epoch,), 25.0, Energy(90.0, "rapl"), None, obs_profile
    )


def test_a_recognised_trial_skips_the_remaining_probes() -> None:
    plan = PipelinedPlan(4, [DEFAULT, OTHER, SystemSetting.of({"cores": "3"})], ProbingConfig())
    history = [profiling_segment({})]
    assert plan.phase(TrialHistory(history)) is Phase.PROBING
    recognized = TrialHistory(history, Recognized(OTHER))
    assert plan.phase(recognized) is Phase.SETTLED
    nxt = plan.next_segment(recognized)
    assert nxt is not None and nxt.setting == OTHER and nxt.epochs == 3 and nxt.role is Role.TRAIN
    assert plan.chosen(recognized) == (OTHER, SettingSource.RECOGNIZED)
    assert plan.probes(recognized) == []


def model_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    rec = Recognizer(Objective({"duration": 1.0}), RecognizerSettings())
    for obs in training_set(rng):
        rec.observe(obs)
    assert rec.fit()
    path = tmp_path / "model.json"
    save(rec, path)
    return path


def test_service_hits_a_known_job_and_misses_with_reasons(tmp_path: Path) -> None:
    path = model_file(tmp_path)
    service = RecognitionService(RecognitionConfig(path=path), Objective({"duration": 1.0}), "x")
    assert service.problem is None
    rng = np.random.default_rng(7)
    hit = service.lookup(observation(KNOWN[0], rng, probed=False))
    assert hit["hit"] and hit["setting"] == BEST[KNOWN[0]]
    assert service.lookup(None) == {
        "hit": False,
        "reason": "the profiling epoch has no usable profile",
    }
    other = observation(KNOWN[0], rng, probed=False, extra={"brand-new-counter": 1.0})
    miss = service.lookup(other)
    assert not miss["hit"] and "cannot compare this profile with the model" in miss["reason"]


def test_a_corrupt_or_missing_model_means_probing_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text('{"format": "pipetune-recognition", "version": 99}')
    service = RecognitionService(RecognitionConfig(path=path), Objective({"duration": 1.0}), "x")
    assert service.recognizer is None and "is unusable" in (service.problem or "")
    result = service.lookup(observation(KNOWN[0], np.random.default_rng(0), probed=False))
    assert not result["hit"] and "probing instead" in result["reason"]
    assert service.learn(None, [], None) == service.problem
    assert json.loads(path.read_text())["version"] == 99  # a broken file is never overwritten

    path.unlink()
    fresh = RecognitionService(RecognitionConfig(path=path), Objective({"duration": 1.0}), "x")
    assert fresh.problem is None
    miss = fresh.lookup(observation(KNOWN[0], np.random.default_rng(0), probed=False))
    assert not miss["hit"] and "no model yet" in miss["reason"]


def test_clustering_show_fit_reset(tmp_path: Path) -> None:
    conf = write_project(tmp_path, {"clustering": {"path": "model.json"}})
    model_file(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(main, ["clustering", "--config", str(conf), "show"])
    assert shown.exit_code == 0, shown.output
    assert "k = 3" in shown.output and "threshold" in shown.output
    assert "knowledge (cluster, batch size → best setting):" in shown.output
    assert shown.output.count("observation(s))") == 3  # one cell per known job at batch 64
    as_json = json.loads(
        runner.invoke(main, ["clustering", "--config", str(conf), "show", "--json"]).output
    )
    assert as_json["fitted"] and len(as_json["clusters"]) == 3
    fitted = runner.invoke(main, ["clustering", "--config", str(conf), "fit"])
    assert fitted.exit_code == 0 and fitted.output.startswith("fitted")
    reset = runner.invoke(main, ["clustering", "--config", str(conf), "reset", "--yes"])
    assert reset.exit_code == 0 and not (tmp_path / "model.json").exists()
    empty = runner.invoke(main, ["clustering", "--config", str(conf), "show"])
    assert "no model yet" in empty.output


def test_clustering_config_is_validated(tmp_path: Path) -> None:
    from pipetune.config import load_config
    from pipetune.errors import ConfigError

    conf = write_project(tmp_path, {"clustering": {"batchParameter": "bs", "k": 0}})
    try:
        load_config(conf)
    except ConfigError as exc:
        found = [str(p) for p in exc.problems]
    assert any(
        p.startswith("$.clustering.batchParameter: expected the hyperparameter") for p in found
    )
    assert "$.clustering.k: expected a whole number ≥ 1, found 0" in found


def test_a_resumed_run_keeps_a_finished_trials_recognition(tmp_path: Path) -> None:
    """Replaying the journal restores the look-up, so the summary still says 'recognized'."""
    from pipetune.run_state import RunState

    events = [
        {"type": "run_started", "run_id": "r", "mode": "pipetune", "planned_trials": 1},
        {
            "type": "trial_started",
            "trial": "t000",
            "number": 0,
            "hyperparameters": {},
            "checkpoint": "c",
            "system": None,
        },
        {
            "type": "recognition",
            "trial": "t000",
            "result": {"hit": True, "setting": {"cores": "1"}},
        },
    ]
    trial = RunState.replay(events).trials["t000"]
    assert trial.recognition == {"hit": True, "setting": {"cores": "1"}}
    plan = PipelinedPlan(3, [DEFAULT, OTHER], ProbingConfig())
    assert plan.chosen(trial.history()) == (OTHER, SettingSource.RECOGNIZED)


def test_tolerance_scales_the_threshold(tmp_path: Path) -> None:
    path = model_file(tmp_path)
    rng = np.random.default_rng(3)
    far = observation(KNOWN[0], rng, probed=False, noise=0.6)  # a very noisy repeat
    strict = RecognitionService(RecognitionConfig(path=path), Objective({"duration": 1.0}), "x")
    lenient = RecognitionService(
        RecognitionConfig(path=path, tolerance=50.0), Objective({"duration": 1.0}), "x"
    )
    a, b = strict.lookup(far), lenient.lookup(far)
    assert a["distance"] == b["distance"]
    assert b["threshold"] == 50.0 * a["threshold"]
    assert not a["hit"] and b["hit"]
