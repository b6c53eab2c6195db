"""The learnt run-to-run noise: its estimate, jobs told apart by it, one job never split by it,
and a saved model that keeps it (older files: the prior alone)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipetune.recognition import Observation, Recognizer, RecognizerSettings
from pipetune.recognition.features import Scaler
from pipetune.recognition.noise import (
    NOISE_SIGMA,
    PRIOR_WEIGHT,
    feature_variance,
    prior_noise,
    weights,
)
from pipetune.recognition.persistence import load, save
from pipetune.telemetry.profile import JobProfile
from tests.test_recognition_profiles import BASE, DURATION, probes

# Two jobs alike on every counter but four, where the second runs at 1.5× (as two text models
# differ here: seconds per sample, read and written chars, voluntary switches).
DIFFERING = ("proc.read_chars", "proc.write_chars", "proc.ctx_voluntary")
SETTINGS = {"first": {"cores": "1", "memory": "2g"}, "second": {"cores": "4", "memory": "2g"}}


def run(job: str, rng: np.random.Generator, noise: float = 0.05) -> Observation:
    """One run: every rate and the pace off by ±`noise` (uniform), the second job 1.5× on a few."""
    factor = 1.5 if job == "second" else 1.0
    features = {
        name: value * (factor if name in DIFFERING else 1.0) * rng.uniform(1 - noise, 1 + noise)
        for name, value in BASE.items()
    }
    epoch_s = 60.0 * factor * rng.uniform(1 - noise, 1 + noise)
    return Observation(
        JobProfile(features, "perf+proc", 30.0),
        batch_size=64,
        epoch_s=epoch_s,
        samples=60000,
        energy_j=150.0 * epoch_s * rng.uniform(1 - noise, 1 + noise),
        energy_source="rapl",
        probes=probes(SETTINGS[job], epoch_s, 150.0),
        job=job,
    )


def trained(jobs: tuple[str, ...], seed: int, runs: int = 4) -> Recognizer:
    rec = Recognizer(DURATION, RecognizerSettings(refit_every=1000))
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        for job in jobs:
            rec.observe(run(job, rng))
    assert rec.fit()
    return rec


@pytest.mark.parametrize("seed", range(5))
def test_jobs_that_differ_by_half_on_a_few_features_are_told_apart(seed):
    # Under the prior alone (0.25 per feature) they are one job. Ten runs each (18 degrees of
    # freedom against the prior's 3) teach the model that its runs vary by ~3 %, not 28 %.
    rec = trained(("first", "second"), seed, runs=10)
    assert rec.model.k == 2 and sorted(rec.model.sizes) == [10, 10]
    rng = np.random.default_rng(100 + seed)
    for job in ("first", "second"):
        answer = rec.lookup(run(job, rng))
        assert answer.hit and answer.learnt_from == job and answer.setting == SETTINGS[job]


@pytest.mark.parametrize("seed", range(5))
def test_a_job_never_seen_is_not_given_the_similar_jobs_setting(seed):
    rec = trained(("first",), seed, runs=8)
    rng = np.random.default_rng(200 + seed)
    assert rec.lookup(run("first", rng)).hit
    assert not rec.lookup(run("second", rng)).hit


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("runs", [6, 20])
def test_one_jobs_runs_are_never_split_into_two_clusters(seed, runs):
    rec = trained(("first",), seed, runs=runs)
    assert rec.model.k == 1, rec.model.k_rule
    assert rec.lookup(run("first", np.random.default_rng(300 + seed))).hit


def test_the_estimate_blends_the_prior_with_the_pooled_within_cluster_spread_per_feature():
    names = ("a", "b", "job.batch_size")
    scaler = Scaler(names, (0.0, 0.0, 0.0), (0.5, 1.0, 1.0))
    assert prior_noise(scaler) == pytest.approx((0.25 / 0.5) ** 2 + 0.25**2)  # batch exact
    z = np.array([[1.0, 0.0, 5.0], [-1.0, 0.0, 5.0], [10.0, 2.0, 0.0], [10.0, 0.0, 9.0]])
    labels = np.array([0, 0, 1, 1])
    # Within-cluster sums of squares in log units (z × std): a 0.25 + 0.25, b 1 + 1.
    within = np.array([0.5, 2.0])
    expected = (PRIOR_WEIGHT * NOISE_SIGMA**2 + within) / (PRIOR_WEIGHT + 4 - 2)
    variance = feature_variance(scaler, z, labels)
    assert variance[:2] == pytest.approx(expected)
    assert variance[2] == pytest.approx(NOISE_SIGMA**2)  # batch size: exact, the prior's σ
    assert weights(scaler, variance) == pytest.approx(np.array([0.5, 1.0, 1.0]) / np.sqrt(variance))
    # One run per cluster: no degree of freedom, the prior alone.
    assert feature_variance(scaler, z[:2], np.array([0, 1])) == pytest.approx(NOISE_SIGMA**2)


def test_the_noise_is_learnt_from_the_data_not_the_prior_alone():
    rec = trained(("first", "second"), 0, runs=10)
    # ±5 % uniform noise is ~0.03 log units per feature, far below the prior's 0.25: the
    # learnt σ_f = std_f / weight_f is well below it on every noisy feature.
    sigma = np.asarray(rec.model.scaler.std) / rec.model.weights
    noisy = [n != "job.batch_size" for n in rec.model.scaler.names]
    assert (sigma[noisy] < 0.5 * NOISE_SIGMA).all()


def test_a_saved_model_keeps_its_noise_and_older_files_get_the_prior(tmp_path):
    rec = trained(("first", "second"), 1)
    path = tmp_path / "model.json"
    save(rec, path)
    loaded = load(path, DURATION)
    assert loaded.model.noise == rec.model.noise
    assert np.array_equal(loaded.model.weights, rec.model.weights)
    queries = [run(job, np.random.default_rng(5)) for job in ("first", "second")]
    assert [loaded.lookup(q) for q in queries] == [rec.lookup(q) for q in queries]
    data = json.loads(path.read_text())
    del data["model"]["noise"]  # as saved before the noise was learnt
    del data["model"]["weights"]
    path.write_text(json.dumps(data))
    older = load(path, DURATION)
    assert older.model.noise == pytest.approx(prior_noise(older.model.scaler))
    assert older.model.weights is None  # measures in standardised units, as it was fitted
    assert np.array_equal(older.model.thresholds, rec.model.thresholds)
