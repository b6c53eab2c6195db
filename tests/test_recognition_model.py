"""Recognizer with real scikit-learn: recurring jobs recognised, far jobs unknown, the feature
set checked, k by separation in noise units, the refit schedule, and the table rebuilt across
refits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipetune.errors import PipeTuneError
from pipetune.recognition import (
    FeatureMismatch,
    InvalidObservation,
    Observation,
    Recognizer,
    RecognizerSettings,
)
from pipetune.recognition import model as model_module
from pipetune.recognition.clusters import THRESHOLD_FLOOR, fit_model, thresholds
from tests.test_recognition_profiles import (
    BEST,
    DURATION,
    FAR,
    KNOWN,
    observation,
    profile,
    training_set,
)


def fitted(seed: int = 1, **settings: object) -> Recognizer:
    rec = Recognizer(DURATION, RecognizerSettings(**{"refit_every": 1000, **settings}))
    for obs in training_set(np.random.default_rng(seed)):
        rec.observe(obs)
    assert rec.fit()
    return rec


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return fitted()


def test_recurring_runs_are_recognised_with_their_best_setting(rec):
    rng = np.random.default_rng(7)
    clusters = set()
    for job in KNOWN:
        for _ in range(3):
            r = rec.lookup(observation(job, rng, probed=False))
            assert r.hit, r.reason
            assert r.setting == BEST[job]
            assert r.metric == "duration"
            assert r.observations == 6
            assert r.distance is not None and r.threshold is not None
            assert r.distance <= r.threshold
            assert set(r.values or {}) == {"epoch_s", "energy_j"}
            clusters.add((job, r.cluster))
    assert len({c for _, c in clusters}) == 3  # one cluster per job, one job per cluster
    assert len(clusters) == 3


def test_a_far_job_is_unknown_not_forced_into_the_nearest_cluster(rec):
    r = rec.lookup(observation(FAR, np.random.default_rng(8)))
    assert not r.hit
    assert r.setting is None
    assert r.distance is not None and r.threshold is not None and r.distance > r.threshold
    assert r.reason.startswith(f"unknown job: distance {r.distance:.3g} > threshold")
    assert f"of the nearest cluster {r.cluster}" in r.reason


def test_a_known_job_metered_by_another_source_is_a_feature_mismatch(rec):
    obs = observation("lenet5-mnist", np.random.default_rng(9), energy_source="estimate")
    with pytest.raises(FeatureMismatch, match=r"missing job\.power_w\[rapl\]") as err:
        rec.lookup(obs)
    assert err.value.extra == ("job.power_w[estimate]",)


@pytest.mark.parametrize(
    ("args", "missing", "extra"),
    [
        ({"extra": {"node-loads": 3e7}}, (), ("node-loads",)),
        ({"drop": ("LLC-loads",)}, ("LLC-loads",), ()),
        ({"extra": {"node-loads": 3e7}, "drop": ("cycles",)}, ("cycles",), ("node-loads",)),
    ],
)
def test_a_different_feature_set_raises_naming_what_differs(rec, args, missing, extra):
    obs = observation("lenet5-mnist", np.random.default_rng(10), **args)
    with pytest.raises(FeatureMismatch) as err:
        rec.lookup(obs)
    assert isinstance(err.value, PipeTuneError)
    assert (err.value.missing, err.value.extra) == (missing, extra)
    for name in missing + extra:
        assert name in str(err.value)


def test_excluded_features_and_constant_features_do_not_matter(rec):
    names = rec.model.scaler.names
    assert "proc.threads" not in names and "task-clock" not in names
    assert {"job.batch_size", "job.s_per_sample", "job.power_w[rapl]"} <= set(names)
    assert "proc.major_faults" in names  # 0 in every run: std floored, no division by 0
    i = names.index("proc.major_faults")
    assert rec.model.scaler.std[i] > 0
    # A level or a meaningless system-wide counter may change freely.
    obs = observation("cnn-news20", np.random.default_rng(11))
    wild = {**obs.profile.features, "proc.threads": 9999.0, "task-clock": 1.0}
    wild_obs = Observation(
        type(obs.profile)(wild, "perf+proc", 30.0),
        64,
        obs.epoch_s,
        obs.samples,
        obs.energy_j,
        "rapl",
    )
    assert rec.lookup(wild_obs).hit


def test_order_is_by_name_never_by_position(rec):
    obs = observation("lstm-news20", np.random.default_rng(12))
    shuffled = dict(reversed(list(obs.profile.features.items())))
    raw = rec.settings.features.raw(obs)
    assert (
        rec.model.scaler.row(raw).tolist()
        == rec.model.scaler.row(dict(reversed(raw.items()))).tolist()
    )
    assert list(shuffled) != list(obs.profile.features)


def test_k_is_the_largest_separated_one_and_finds_the_three_jobs(rec):
    assert rec.model.k == 3
    assert rec.model.k_rule.startswith("separation: the largest k")
    sil = rec.model.silhouettes
    # k >= 4 splits a job's six runs by their noise: rejected before any silhouette is scored
    assert set(sil) == {2, 3}
    assert max(sil, key=sil.get) == 3
    assert sorted(rec.model.sizes) == [6, 6, 6]


def test_one_job_only_gives_one_cluster():
    rng = np.random.default_rng(13)
    rec = Recognizer(DURATION)
    for _ in range(8):
        rec.observe(observation("lstm-news20", rng))
    assert rec.fitted and rec.model.k == 1
    # every split of one job's runs puts centroids closer than two runs' noise: never scored
    assert rec.model.k_rule.startswith("one cluster: every k = 2..6 put centroids closer")
    assert rec.lookup(observation("lstm-news20", rng)).hit
    assert not rec.lookup(observation("lenet5-mnist", rng)).hit


def test_a_given_k_is_used():
    rec = fitted(k=2)
    assert rec.model.k == 2 and rec.model.k_rule == "given"


def test_not_fitted_below_the_minimum_or_when_all_identical():
    rng = np.random.default_rng(14)
    rec = Recognizer(DURATION)
    r = rec.lookup(observation("lenet5-mnist", rng))
    assert not r.hit and r.reason == "model not fitted: no observations yet"
    for job in ("lenet5-mnist", "cnn-news20"):
        rec.observe(observation(job, rng))
    r = rec.lookup(observation("lenet5-mnist", rng, extra={"anything": 1.0}))  # no check yet
    assert not r.hit and r.reason == "model not fitted: 2 profiles, need 4"
    same = observation("lenet5-mnist", rng)
    twins = Recognizer(DURATION)
    for _ in range(5):
        twins.observe(same)
    assert not twins.fitted
    assert twins.lookup(same).reason == "model not fitted: all 5 profiles are identical"


def test_thresholds_small_clusters_borrow_from_the_others():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    distances = np.array([1.0, 1.0, 1.0, 2.0, 0.6, 0.6, 0.0])
    t = thresholds(labels, distances, 3)
    own0 = 1.5 * np.sqrt(5 / 3) * np.percentile([1.0, 1.0, 1.0, 2.0], 95)
    assert t[0] == pytest.approx(own0)
    assert t[1] == pytest.approx(own0)  # two members: the others' median beats its own 1.56
    assert t[2] == pytest.approx(own0)  # a singleton: the others' median
    wide = thresholds(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.1, 0.1, 3.0, 3.0]), 2)
    assert wide[1] == pytest.approx(1.5 * np.sqrt(3) * 3.0)  # two members, far apart: its own
    assert thresholds(np.array([0, 0, 0]), np.zeros(3), 1)[0] == THRESHOLD_FLOOR


def test_the_noise_prior_blends_into_small_clusters_and_fades_with_members():
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    distances = np.array([0.2, 0.2, *[1.0] * 9])
    prior = np.array([6.0, 6.0])
    t = thresholds(labels, distances, 2, prior)
    learnt = thresholds(labels, distances, 2)
    # two members: 3 pseudo-runs of prior against 1 degree of freedom of its own
    assert t[0] == pytest.approx(np.sqrt((3 * 36 + 1 * learnt[0] ** 2) / 4))
    assert t[1] == pytest.approx(np.sqrt((3 * 36 + 8 * learnt[1] ** 2) / 11))
    assert t[0] > t[1] > learnt[1]
    single = thresholds(np.array([0]), np.array([0.0]), 1, np.array([6.0]))
    assert single[0] == pytest.approx(6.0)  # one run: the prior alone


def test_a_job_seen_in_one_two_trial_run_is_recognised_on_its_next_run():
    # Real runs of one job differ by ~0.1-0.4 log units per counter (bench/results); with two
    # runs the learnt spread alone is a pin-prick. The prior accepts repeats at that noise and
    # still turns away jobs whose counters differ by ×1.8 on average (log-uniform ±1.2).
    def runs(job: str, seed: int, count: int) -> list[Observation]:
        rng = np.random.default_rng(seed)
        return [observation(job, rng, noise=0.35) for _ in range(count)]

    hits = 0
    for seed in range(20):
        rec = Recognizer(DURATION, RecognizerSettings(min_observations=2))
        for obs in runs("lenet5-mnist", seed, 2):
            rec.observe(obs)
        assert rec.fitted and rec.model.k == 1
        hits += rec.lookup(runs("lenet5-mnist", 100 + seed, 1)[0]).hit
        for other in ("lstm-news20", "cnn-news20", FAR):
            assert not rec.lookup(runs(other, 200 + seed, 1)[0]).hit
    assert hits == 20


def test_refit_schedule_and_fit_from_the_minimum():
    rng = np.random.default_rng(15)
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=3))
    obs = training_set(rng, runs=3)
    for o in obs[:3]:
        rec.observe(o)
    assert not rec.fitted and rec.status == "model not fitted: 3 profiles, need 4"
    note = rec.observe(obs[3])  # unfitted: tries at every observation once there are 4
    assert rec.fitted and rec.model.fitted_on == 4 and "refitted" in note
    rec.observe(obs[4])
    rec.observe(obs[5])
    assert rec.model.fitted_on == 4 and rec.pending == 2
    rec.observe(obs[6])
    assert rec.model.fitted_on == 7 and rec.pending == 0
    rec.observe(obs[7])
    assert rec.fit() and rec.model.fitted_on == 8 and rec.pending == 0  # explicit fit


def test_table_is_rebuilt_when_refits_relabel_the_clusters():
    rng = np.random.default_rng(0)
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=3))
    for o in training_set(rng, runs=2):
        rec.observe(o)
    mappings = []
    for job in ("cnn-news20",) * 3 + ("lstm-news20",) * 3:
        rec.observe(observation(job, rng))
        if rec.pending:
            continue
        mapping = {}
        for j in KNOWN:
            r = rec.lookup(observation(j, rng, probed=False))
            assert r.hit and r.setting == BEST[j], r.reason
            mapping[j] = r.cluster
        mappings.append(mapping)
        cells = {(c, e.setting.label()) for c, _, e in rec.knowledge.rows()}
        assert cells == {
            (mapping[j], ",".join(f"{k}={v}" for k, v in BEST[j].items())) for j in KNOWN
        }
    assert len(mappings) == 2 and mappings[0] != mappings[1]  # ids did change between fits


def test_an_unknown_observation_waits_for_the_refit():
    rec = fitted()
    rng = np.random.default_rng(16)
    note = rec.observe(observation(FAR, rng))
    assert note.startswith("stored as an unknown job")
    assert all(e.job != FAR for _, _, e in rec.knowledge.rows())


def test_observation_descriptors_are_validated():
    p = profile("lenet5-mnist", np.random.default_rng(17))
    with pytest.raises(InvalidObservation) as err:
        Observation(p, batch_size=0, epoch_s=float("nan"), samples=True, energy_j=-1.0)
    assert [q.path for q in err.value.problems] == ["batch_size", "samples", "epoch_s", "energy_j"]


def test_fit_model_reports_why_not():
    rows = np.ones((3, 2))
    assert fit_model(("a", "b"), rows).reason == "model not fitted: 3 profiles, need 4"
    two = np.array([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0], [5.0, 5.0]])
    assert "k = 3 but only 2 distinct" in fit_model(("a", "b"), two, k=3).reason
    model, labels = fit_model(("a", "b"), two[1:3], min_observations=2)
    assert model.k == 1 and model.k_rule.startswith("one cluster: too few profiles")
    assert labels.tolist() == [0, 0]


def test_describe_is_json_friendly_and_complete(rec):
    d = rec.describe()
    json.dumps(d, allow_nan=False)
    assert d["fitted"] and d["k"] == 3 and d["k_rule"].startswith("separation")
    assert d["observations"] == 18 and d["status"] == "fitted on 18 of 18 observations"
    assert sorted(c["size"] for c in d["clusters"]) == [6, 6, 6]
    assert sorted(next(iter(c["jobs"])) for c in d["clusters"]) == sorted(KNOWN)
    assert all(c["threshold"] > 0 and len(c["distinctive"]) == 3 for c in d["clusters"])
    assert len(d["knowledge"]) == 3 and {k["count"] for k in d["knowledge"]} == {6}
    assert d["replaced"] == [] and d["feature_names"] == list(rec.model.scaler.names)
    empty = Recognizer(DURATION).describe()
    assert not empty["fitted"] and empty["status"] == "model not fitted: no observations yet"


def test_a_lookup_only_reads_the_fitted_model(rec, monkeypatch):
    """Lookups never refit, learn or change their answer (their speed: bench/recognition.py)."""
    fits: list[str] = []

    def counted(name: str, real):
        def call(*args, **kwargs):
            fits.append(name)
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(model_module, "fit_model", counted("fit_model", fit_model))
    monkeypatch.setattr(
        Recognizer, "rebuild_knowledge", counted("rebuild", Recognizer.rebuild_knowledge)
    )
    model, before = rec.model, rec.describe()
    rng = np.random.default_rng(18)
    for job in (*KNOWN, FAR):
        query = observation(job, rng, probed=False)
        first = rec.lookup(query)
        assert first.hit == (job != FAR), first.reason
        assert first.setting == (BEST[job] if first.hit else None)
        assert all(rec.lookup(query) == first for _ in range(50))
    assert fits == []
    assert rec.model is model
    assert rec.describe() == before


def test_fit_uses_the_most_common_feature_set_and_says_how_many_it_left_out():
    rng = np.random.default_rng(19)
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=1000))
    for obs in training_set(rng, runs=4):
        rec.observe(obs)
    rec.observe(observation("lenet5-mnist", rng, drop=("LLC-loads",)))  # perf lost an event
    assert rec.fit()
    assert rec.status == "fitted on 12 of 13 observations (1 left out: a different feature set)"
    assert "LLC-loads" in rec.model.scaler.names
