"""Knowledge table: (cluster, batch) cells, the nearest-batch rule, stale knowledge, and the
selection being probing's own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.recognition import KnowledgeTable, Recognizer, RecognizerSettings
from pipetune.recognition.knowledge import HISTORY_LIMIT, best_probe
from pipetune.recognition.persistence import load, save
from pipetune.records import SystemSetting
from tests.test_recognition_profiles import BEST, DURATION, observation, training_set

OTHER = {"cores": "2", "memory": "8g"}


def batches_recognizer(nearest: bool) -> Recognizer:
    """k = 3 (the point is the table), each job seen at batch 64 ×4 and 256 ×2."""
    rec = Recognizer(DURATION, RecognizerSettings(k=3, refit_every=1000, nearest_batch=nearest))
    for obs in training_set(np.random.default_rng(2), runs=6, batches=(64, 64, 256)):
        rec.observe(obs)
    assert rec.fit()
    return rec


def test_a_batch_size_not_seen_in_the_cluster_is_a_miss_with_reason():
    rec = batches_recognizer(nearest=False)
    r = rec.lookup(observation("lenet5-mnist", np.random.default_rng(3), batch=128))
    assert not r.hit and r.cluster is not None
    assert r.reason == f"cluster {r.cluster} has no knowledge for batch size 128 (has 64, 256)"


def test_nearest_batch_rule_within_a_factor_of_two_and_says_so():
    rec = batches_recognizer(nearest=True)
    rng = np.random.default_rng(4)
    r = rec.lookup(observation("lenet5-mnist", rng, batch=128))
    assert r.hit and r.setting == BEST["lenet5-mnist"]
    assert r.batch_size_used == 64  # 64 and 256 both ×2 away: the one with more observations
    assert "borrowed from batch size 64" in r.reason
    exact = rec.lookup(observation("lenet5-mnist", rng, batch=64))
    assert exact.hit and exact.batch_size_used is None


def test_nearest_batch_rule_never_beyond_a_factor_of_two():
    table = KnowledgeTable()
    for i, batch in enumerate((64, 256)):
        obs = observation("cnn-news20", np.random.default_rng(i), batch=batch)
        table.record(0, i, obs, DURATION)
    found = table.find(0, 600, nearest_batch=True)
    assert found == "cluster 0 has no knowledge for batch size 600 and none within ×2 (has 64, 256)"
    assert table.find(0, 500, nearest_batch=True).batch_size == 256
    assert table.find(1, 64) == "cluster 1 has no knowledge yet (no probed observation)"


def test_agreeing_probes_count_up_and_disagreeing_ones_replace_stale_knowledge():
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=1000))
    rng = np.random.default_rng(5)
    for obs in training_set(rng, runs=2):
        rec.observe(obs)
    assert rec.fit()
    cluster = rec.lookup(observation("lstm-news20", rng)).cluster
    cell = (cluster, 64)
    assert [e.count for e in rec.knowledge.cells[cell]] == [2]
    note = rec.observe(observation("lstm-news20", rng))
    assert note.startswith("confirmed cores=2,memory=8g")
    assert [e.count for e in rec.knowledge.cells[cell]] == [3]

    fresh = {"cores": "4", "memory": "2g"}
    note = rec.observe(observation("lstm-news20", rng, best=fresh))
    assert (
        note
        == f"replaced stale cores=2,memory=8g by cores=4,memory=2g for cluster {cluster}, batch 64"
    )
    (entry,) = rec.knowledge.cells[cell]
    assert entry.setting.as_dict() == fresh and entry.count == 1 and entry.members == 4
    (old,) = rec.knowledge.history
    assert old.entry.setting.as_dict() == OTHER and old.entry.count == 3
    assert old.by.as_dict() == fresh and (old.cluster, old.batch_size) == cell
    r = rec.lookup(observation("lstm-news20", rng, probed=False))
    assert r.setting == fresh and r.observations == 1
    shown = rec.describe()["replaced"]
    assert shown[0]["setting"] == OTHER and shown[0]["count"] == 3

    # A refit replays every observation in order: the same table, the same history.
    before = sorted((e.job, b, e.setting.label(), e.count) for _, b, e in rec.knowledge.rows())
    assert rec.fit()
    after = sorted((e.job, b, e.setting.label(), e.count) for _, b, e in rec.knowledge.rows())
    assert after == before
    assert [h.entry.setting.as_dict() for h in rec.knowledge.history] == [OTHER]


def test_history_is_bounded():
    table = KnowledgeTable()
    rng = np.random.default_rng(6)
    for i in range(HISTORY_LIMIT + 5):
        best = OTHER if i % 2 else BEST["cnn-news20"]
        table.record(0, i, observation("cnn-news20", rng, best=best), DURATION)
    assert len(table.history) == HISTORY_LIMIT
    assert table.history[-1].observation == HISTORY_LIMIT + 4


def test_selection_is_probing_select_best_with_the_same_objective():
    obs = observation("lenet5-mnist", np.random.default_rng(7))
    for weights in ({"duration": 1.0}, {"energy": 1.0}, {"duration": 0.5, "energy": 0.5}):
        objective = Objective(weights)
        table = KnowledgeTable()
        table.record(2, 0, obs, objective)
        (entry,) = table.cells[(2, 64)]
        assert entry.setting == select_best(list(obs.probes), objective).setting
        assert entry.objective == objective.describe()


def test_energy_objective_differs_from_duration_when_the_fastest_costs_more():
    fast = ProbeResult(SystemSetting.of({"cores": "4"}), 8.0, 900.0, "rapl")
    frugal = ProbeResult(SystemSetting.of({"cores": "1"}), 12.0, 500.0, "rapl")
    default = ProbeResult(SystemSetting.of({"cores": "2"}), 10.0, 700.0, "rapl")
    probes = [default, fast, frugal]
    assert best_probe(probes, DURATION) is fast
    assert best_probe(probes, Objective({"energy": 1.0})) is frugal


def test_observations_without_usable_probes_teach_nothing():
    rng = np.random.default_rng(8)
    table = KnowledgeTable()
    assert table.record(0, 0, observation("cnn-news20", rng, probed=False), DURATION) == (
        "not probed: nothing to learn"
    )
    failed = ProbeResult(SystemSetting.of({"cores": "2"}), None, None, "none", error="OOM")
    obs = observation("cnn-news20", rng)
    broken = type(obs)(obs.profile, 64, obs.epoch_s, obs.samples, probes=(failed,))
    assert table.record(0, 1, broken, DURATION).startswith("probes not usable for duration")
    no_energy = ProbeResult(SystemSetting.of({"cores": "2"}), 10.0, None, "none")
    unmetered = type(obs)(obs.profile, 64, obs.epoch_s, obs.samples, probes=(no_energy,))
    assert "no energy measurement" in table.record(0, 2, unmetered, Objective({"energy": 1.0}))
    assert table.cells == {}


@pytest.mark.parametrize("batch", [64, 256])
def test_every_cell_backed_by_its_observations(batch):
    rec = batches_recognizer(nearest=False)
    counts = sorted(e.count for c, b, e in rec.knowledge.rows() if b == batch)
    assert counts == ([4, 4, 4] if batch == 64 else [2, 2, 2])


def test_two_jobs_in_one_cluster_keep_their_own_settings():
    # k = 1 forces every job into one cluster (as a capped k or similar counters would): each
    # job's profile still gets its own entry, and a profile near none of them is a miss.
    rec = Recognizer(DURATION, RecognizerSettings(k=1, refit_every=1000))
    rng = np.random.default_rng(9)
    for obs in training_set(rng, runs=3):
        rec.observe(obs)
    assert rec.fit() and rec.model.k == 1
    cell = rec.knowledge.cells[(0, 64)]
    assert sorted(e.job for e in cell) == sorted(["lenet5-mnist", "lstm-news20", "cnn-news20"])
    for job in ("lenet5-mnist", "lstm-news20", "cnn-news20"):
        r = rec.lookup(observation(job, rng, probed=False))
        assert r.hit and r.setting == BEST[job] and r.learnt_from == job
    stranger = rec.lookup(observation("far-away", rng, probed=False))
    assert not stranger.hit


def test_a_cell_learns_the_setting_the_trial_chose_not_the_fastest_probe(tmp_path):
    """Window probes keep the default unless a candidate is faster with confidence: a cell
    must give the recurring job that choice, and keep it through a save and a load."""
    obs = observation("lenet5-mnist", np.random.default_rng(8))
    default = SystemSetting.of({"cores": "2", "memory": "8g"})
    barely = SystemSetting.of({"cores": "1", "memory": "8g"})
    probes = (
        ProbeResult(default, 5.0, 50.0, "rapl"),
        ProbeResult(barely, 4.9, 49.0, "rapl"),  # faster, but not with confidence
    )
    fastest = best_probe(probes, DURATION)
    assert not isinstance(fastest, str) and fastest.setting == barely
    table = KnowledgeTable()
    table.record(0, 0, dataclasses.replace(obs, probes=probes, chosen=default), DURATION)
    found = table.find(0, obs.batch_size)
    assert not isinstance(found, str) and found.entry.setting == default
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=1000))
    for o in training_set(np.random.default_rng(9), runs=2):
        rec.observe(dataclasses.replace(o, chosen=o.probes[-1].setting if o.probes else None))
    path = tmp_path / "model.json"
    save(rec, path)
    assert [o.chosen for o in load(path, DURATION).observations] == [
        o.chosen for o in rec.observations
    ]
    assert any(o.chosen is not None for o in rec.observations)
