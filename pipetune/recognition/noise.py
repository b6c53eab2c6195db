"""Run-to-run noise per feature, learnt from the profiles, and the distance it defines.

Distances between profiles are measured in units of each feature's run-to-run noise (a diagonal
Mahalanobis distance): feature f of a standardised row z is multiplied by `std_f / σ_f`
(`weights`), where std_f is the scaler's overall spread and σ_f the job's run-to-run std of f in
log units. So a feature that differs between jobs by five of its noise-σ weighs five units,
whatever its overall spread; a feature that is mostly noise weighs little. In these units a run's
expected squared distance from its job's mean is the number of noisy features (`noise_units`),
which is the model's `noise`.

Per-feature estimate (`feature_variance`), a conjugate update of a prior by the pooled
within-cluster spread of a clustering:

* prior: every feature varies by `NOISE_SIGMA` (0.25 log units, ~28 %) between runs. That is
  about the most that runs of one job vary on a shared 2-CPU machine (minor faults, the
  noisiest counter, by up to 0.8 log units; most counters by 0.05–0.2), so it errs wide.
* data: the within-cluster sum of squares of f in log units, `W_f = Σ_i (x_if − c_{label i,f})²`,
  with `n − k` degrees of freedom (each cluster's mean costs one), pooled over all clusters so
  that jobs with few runs each still learn it together.
* `σ_f² = (PRIOR_WEIGHT · NOISE_SIGMA² + W_f) / (PRIOR_WEIGHT + n − k)`: the prior is worth
  `PRIOR_WEIGHT` (3) pseudo degrees of freedom, so a model of a few runs measures at the prior's
  noise, and as runs accumulate the measured spread takes over.

Exact descriptors (`EXACT_FEATURES`, the batch size) do not vary between runs of a job: they
keep the prior's σ (never learnt) and count for no noise.

A clustering that merges jobs counts their gap as noise on the features that tell them apart,
which would shrink exactly those features' weights. So the variance is taken from the clustering
with the most structure that passes the separation test (`clusters.fit_model`), not from a given
or capped k: k-means splits of one job fail that test, so the finest passing clustering is the
one that merges the fewest jobs without splitting any.

A model saved before the per-feature noise existed has no weights: it keeps measuring in the
scaler's standardised units with its saved (or the prior's, `prior_noise`) total noise.
"""

from __future__ import annotations

import numpy as np

from pipetune.recognition.features import BATCH_SIZE, Scaler

NOISE_SIGMA = 0.25
PRIOR_WEIGHT = 3.0
EXACT_FEATURES = frozenset({BATCH_SIZE})  # descriptors without run-to-run noise


def noisy_columns(scaler: Scaler) -> np.ndarray:
    """1.0 for each feature that varies between runs of one job, 0.0 for the exact ones."""
    return np.array([name not in EXACT_FEATURES for name in scaler.names], dtype=float)


def noise_units(scaler: Scaler) -> float:
    """A run's expected squared distance from its job's mean, in noise units: one per noisy
    feature."""
    return float(noisy_columns(scaler).sum())


def prior_noise(scaler: Scaler) -> float:
    """The prior's total noise in standardised units, Σ_f (NOISE_SIGMA / std_f)² over the noisy
    features: what a model saved without any learnt noise was fitted with."""
    return float((noisy_columns(scaler) * (NOISE_SIGMA / np.asarray(scaler.std)) ** 2).sum())


def feature_variance(scaler: Scaler, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """σ_f² in log units for standardised rows `z` clustered by `labels`, the prior blended in."""
    z = np.asarray(z, dtype=float)
    labels = np.asarray(labels, dtype=int)
    logged = z * np.asarray(scaler.std)
    clusters = np.unique(labels)
    within = np.zeros(z.shape[1])
    for c in clusters:
        members = logged[labels == c]
        within += ((members - members.mean(axis=0)) ** 2).sum(axis=0)
    dof = len(z) - len(clusters)
    learnt = (PRIOR_WEIGHT * NOISE_SIGMA**2 + within) / (PRIOR_WEIGHT + dof)
    return np.where(noisy_columns(scaler) > 0, learnt, NOISE_SIGMA**2)


def weights(scaler: Scaler, variance: np.ndarray) -> np.ndarray:
    """Per-feature factors that turn standardised units into noise units: std_f / σ_f."""
    return np.asarray(scaler.std) / np.sqrt(variance)
