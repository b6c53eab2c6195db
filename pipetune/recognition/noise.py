"""Run-to-run noise: how far runs of one job fall from each other, learnt from the profiles.

The recognizer keeps it as one number in the model's standardised units (`ClusterModel.noise`):
the expected squared distance of one run from its job's true mean profile,
`Σ_f σ_f² / std_f²` over the noisy features (σ_f: the job's run-to-run std of feature f in log
units; std_f: the scaler's std). Exact descriptors (`EXACT_FEATURES`, the batch size) do not
vary between runs of a job and are left out.

Estimate (`estimate`), a conjugate update of a prior by the pooled within-cluster spread:

* prior (`prior_noise`): every feature varies by `NOISE_SIGMA` (0.25 log units, ~28 %)
  between runs, so `noise₀ = Σ_f (NOISE_SIGMA / std_f)²`. That is about the most that runs of
  one job vary on a shared 2-CPU machine (minor faults, the noisiest counter, by up to 0.8 log
  units; most counters by 0.05–0.2), so the prior errs on the wide side.
* data: the clustering's within-cluster sum of squares `W = Σ_i ‖z_i − c_{label i}‖²` over the
  noisy features, with `n − k` degrees of freedom (each cluster's mean costs one): pooled over
  all clusters, so that jobs with only a few runs each still learn it together.
* `noise = (PRIOR_WEIGHT · noise₀ + W) / (PRIOR_WEIGHT + n − k)`: the prior is worth
  `PRIOR_WEIGHT` (3) pseudo degrees of freedom. With a few runs it dominates (a model of two
  runs of one job recognises its next run at the prior's noise); as runs accumulate the
  measured spread takes over, so jobs whose profiles differ by more than their runs do are told
  apart even when that difference is smaller than the prior's 28 % per feature.

A clustering that merges two jobs counts their gap as noise (W grows): every candidate k is
judged by the noise its own clustering shows, and the model keeps the smallest estimate over
the candidates (`clusters.fit_model`). A model saved before the noise was learnt holds the prior
alone (`model_file_read`), as it was fitted with.
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


def prior_noise(scaler: Scaler) -> float:
    """`noise₀`: Σ_f (NOISE_SIGMA / std_f)² over the noisy features."""
    return float((noisy_columns(scaler) * (NOISE_SIGMA / np.asarray(scaler.std)) ** 2).sum())


def estimate(scaler: Scaler, z: np.ndarray, labels: np.ndarray) -> float:
    """The noise of standardised rows `z` clustered by `labels`, the prior blended in."""
    z = np.asarray(z, dtype=float)
    labels = np.asarray(labels, dtype=int)
    noisy = noisy_columns(scaler)
    clusters = np.unique(labels)
    within = 0.0
    for c in clusters:
        members = z[labels == c]
        within += float((noisy * (members - members.mean(axis=0)) ** 2).sum())
    dof = len(z) - len(clusters)
    return (PRIOR_WEIGHT * prior_noise(scaler) + within) / (PRIOR_WEIGHT + dof)
