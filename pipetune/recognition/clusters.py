"""k-means over profiles in units of run-to-run noise, and per-cluster distance thresholds: the
`ClusterModel`.

Fit (`fit_model`), on the log-scaled, standardised features of the stored observations:

* Not fitted with fewer than `min_observations` (default 4) rows, or when all rows are
  identical; every look-up is then a miss that says so.
* Candidates: `KMeans(n_clusters=k, n_init=10, random_state=seed)` in standardised units for
  every k = 1 … min(8, n − 1, distinct rows); each candidate learns its own per-feature
  run-to-run noise from its pooled within-cluster spread (`noise.feature_variance`) and is
  judged in those noise units (a clustering that merges jobs counts their gap as noise, so it
  is judged by that).
* Separation test: a candidate k ≥ 2 passes only if every pair of its centroids is farther
  apart than two runs of one job typically are, √(2·d) in noise units (d noisy features,
  `separation`). k-means halves of one job's runs are ~1.6 σ apart along one direction while
  √(2·d) grows with √d, so they fail.
* k: the configured one, else the *largest* k that passes (silhouette favours the coarse split
  of hierarchical structure, e.g. one far job against two close ones, so it is not the rule).
  Silhouette (on at most `SILHOUETTE_SAMPLE` rows, in each candidate's noise units) only says
  whether there is structure at all: if no passing k scores above 0.25 ("no substantial
  structure", Kaufman & Rousseeuw), or none passes, the rows are one job: k = 1.
* Metric: the per-feature noise of the finest candidate that passes (k = 1 if none), whatever
  k is used, so that a given or small k does not count the gaps between jobs as noise
  (`noise` module doc). The rows are clustered again at k in those noise units, where
  look-ups measure, and the model keeps the weights (`ClusterModel.weights`). Its `noise` is
  then d, a run's expected squared distance from its job's mean in noise units.
* Threshold of cluster c, on the Euclidean distance to its centroid in noise units,
  blends what the members show with the learnt run-to-run noise, so that a cluster of one or
  two runs is neither a pin-prick (the original's failure: a repeat missed) nor unbounded:

  - *learnt* `O`: `MARGIN` (1.5) × √((n+1)/(n−1)) × the `PERCENTILE` (95th) of its n members'
    distances, when it has at least `MIN_MEMBERS` (3) members. The √ factor turns members'
    distances into a new run's: the centroid is fitted to its members, so with isotropic noise
    a member's expected squared distance is (n−1)/n·σ²d and a new run's (n+1)/n·σ²d. A smaller
    cluster gets the median of the other clusters' learnt thresholds (or, if no cluster is big
    enough, the rule above on all members' distances pooled), or its own rule on its largest
    member distance if that is larger.
  - *noise* `P`: a new run's expected distance from the centroid of n runs under the model's
    noise, `MARGIN` × √((1 + 1/n) · noise) (`prior_radius`). The knowledge table's entry
    radius uses the same `P` (`model.Recognizer._radius`).
  - threshold = √((w·P² + (n−1)·O²) / (w + n − 1)) with w = `PRIOR_WEIGHT` (3) pseudo-runs:
    the pooled noise dominates at n = 1–2 and fades as members accumulate (7 % of the weight at
    n = 40). Every threshold is at least `THRESHOLD_FLOOR` (0.5).

  A profile farther than the threshold of its nearest centroid is an unknown job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipetune.recognition import noise as run_noise
from pipetune.recognition.features import Scaler
from pipetune.recognition.noise import NOISE_SIGMA, PRIOR_WEIGHT

MAX_K = 8
SILHOUETTE_SAMPLE = 2000  # silhouette is O(n²): scored on a seeded sample of this many rows
NO_STRUCTURE_SILHOUETTE = 0.25
PERCENTILE = 95.0
MARGIN = 1.5
MIN_MEMBERS = 3
THRESHOLD_FLOOR = 0.5


@dataclass(frozen=True)
class ClusterModel:
    """A fitted model as plain data: scaler, centroids (k × d) and per-cluster thresholds."""

    scaler: Scaler
    centroids: np.ndarray
    thresholds: np.ndarray
    sizes: tuple[int, ...]
    k_rule: str  # how k was chosen, in words
    noise: float  # learnt run-to-run noise: a run's expected squared distance to its job's mean
    silhouettes: dict[int, float] = field(default_factory=dict)
    fitted_on: int = 0
    weights: np.ndarray | None = None  # standardised → noise units per feature; None: as saved
    # before per-feature noise (distances in standardised units)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def nearest(self, z: np.ndarray) -> tuple[int, float]:
        """(cluster, distance) of the centroid nearest to one standardised row."""
        distances = np.sqrt(((self.centroids - z) ** 2).sum(axis=1))
        cluster = int(distances.argmin())
        return cluster, float(distances[cluster])

    def distinctive(self, cluster: int, top: int = 3) -> list[dict[str, Any]]:
        """The centroid's features farthest from the overall mean, in σ and in raw units."""
        z = self.centroids[cluster] / self._scale()
        raw = self.scaler.inverse(z)
        order = np.argsort(-np.abs(z))[:top]
        return [
            {"feature": self.scaler.names[i], "z": round(float(z[i]), 3), "value": float(raw[i])}
            for i in order
        ]

    def standardise(self, features: dict[str, float]) -> np.ndarray:
        """One observation's raw features → a row in the model's units (noise units, or
        standardised for a model saved without weights); `FeatureMismatch` if they differ."""
        return self.scaler.transform(self.scaler.row(features)) * self._scale()

    def _scale(self) -> np.ndarray:
        return np.ones(len(self.scaler.names)) if self.weights is None else self.weights


@dataclass(frozen=True)
class Unfitted:
    """Why no model could be fitted."""

    reason: str


def fit_model(
    names: Sequence[str],
    rows: np.ndarray,
    *,
    k: int | None = None,
    seed: int = 0,
    min_observations: int = 4,
) -> tuple[ClusterModel, np.ndarray] | Unfitted:
    """(model, training labels) from raw rows (one column per name), or why not."""
    rows = np.asarray(rows, dtype=float)
    n = rows.shape[0]
    if n < min_observations:
        return Unfitted(f"model not fitted: {n} profiles, need {min_observations}")
    scaler = Scaler.fit(names, rows)
    z = scaler.transform(rows)
    distinct = len(np.unique(z, axis=0))
    if distinct < 2:
        return Unfitted(f"model not fitted: all {n} profiles are identical")
    if k is not None and k > distinct:
        return Unfitted(f"model not fitted: k = {k} but only {distinct} distinct profiles")

    from threadpoolctl import threadpool_limits

    # Tiny data: one thread is several times faster than OpenMP's start-up on every fit.
    with threadpool_limits(1):
        candidates = _candidates(scaler, z, min(MAX_K, n - 1, distinct), seed)
        finest = max(c.k for c in candidates.values() if c.separated)
        if k is None:
            k, rule, silhouettes = _choose_k(candidates, seed)
        else:
            rule, silhouettes = "given", {}
        scale = candidates[finest].weights  # module doc: the finest clustering that passes
        zw = z * scale
        km = _kmeans(zw, k, seed)  # clustered again in noise units, where look-ups measure
    centroids = np.asarray(km.cluster_centers_, dtype=float)
    labels = np.asarray(km.labels_, dtype=int)
    distances = np.sqrt(((zw - centroids[labels]) ** 2).sum(axis=1))
    sizes = tuple(int((labels == c).sum()) for c in range(k))
    noise = run_noise.noise_units(scaler)
    prior = np.array([prior_radius(noise, size) for size in sizes])
    model = ClusterModel(
        scaler,
        centroids,
        thresholds(labels, distances, k, prior),
        sizes,
        rule,
        noise,
        silhouettes,
        n,
        scale,
    )
    return model, labels


@dataclass(frozen=True)
class _Candidate:
    """One k's clustering in standardised units, its learnt noise and its rows in noise units."""

    k: int
    labels: np.ndarray
    weights: np.ndarray
    scaled: np.ndarray  # the rows in this clustering's noise units
    separated: bool  # k = 1, or every pair of centroids farther apart than two runs of one job


def _candidates(scaler: Scaler, z: np.ndarray, highest: int, seed: int) -> dict[int, _Candidate]:
    """k = 1 … highest, each judged in the noise units of its own clustering."""
    out = {}
    for c in range(1, highest + 1):
        labels = np.asarray(_kmeans(z, c, seed).labels_, dtype=int)
        scale = run_noise.weights(scaler, run_noise.feature_variance(scaler, z, labels))
        scaled = z * scale
        centroids = np.array([scaled[labels == i].mean(axis=0) for i in range(c)])
        passes = c == 1 or _min_gap(centroids) > separation(run_noise.noise_units(scaler))
        out[c] = _Candidate(c, labels, scale, scaled, passes)
    return out


def threshold_rule() -> dict[str, float]:
    """The constants of the threshold rule, for reports."""
    return {
        "percentile": PERCENTILE,
        "margin": MARGIN,
        "min_members": MIN_MEMBERS,
        "floor": THRESHOLD_FLOOR,
        "noise_sigma": NOISE_SIGMA,
        "prior_weight": PRIOR_WEIGHT,
    }


def _kmeans(z: np.ndarray, k: int, seed: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)


def _choose_k(candidates: dict[int, _Candidate], seed: int) -> tuple[int, str, dict[int, float]]:
    """(k, rule, silhouettes): the largest k ≥ 2 whose centroids are farther apart than two
    runs of one job in its own noise units; 1 if none is, or if no such k has a silhouette
    above `NO_STRUCTURE_SILHOUETTE`."""
    from sklearn.metrics import silhouette_score

    silhouettes: dict[int, float] = {}
    for c in candidates.values():
        if c.k < 2 or not c.separated:
            continue  # one cluster, or splits runs of one job by their noise
        sample = min(len(c.scaled), SILHOUETTE_SAMPLE)
        silhouettes[c.k] = float(
            silhouette_score(c.scaled, c.labels, sample_size=sample, random_state=seed)
        )
    highest = max(candidates)
    if not silhouettes:
        if highest >= 2:
            return (
                1,
                (
                    f"one cluster: every k = 2..{highest} put centroids closer than two runs of "
                    "one job are apart in the noise units of its clustering"
                ),
                silhouettes,
            )
        return 1, "one cluster: too few profiles to compare k = 2..", silhouettes
    best = max(silhouettes.values())
    if best <= NO_STRUCTURE_SILHOUETTE:
        return (
            1,
            (
                f"no structure: best silhouette {best:.3f} <= {NO_STRUCTURE_SILHOUETTE} over the "
                "separated k, so one cluster"
            ),
            silhouettes,
        )
    k = max(silhouettes)
    return (
        k,
        (
            f"separation: the largest k of 2..{highest} whose centroids are all farther apart than "
            f"two runs of one job (best silhouette {best:.3f})"
        ),
        silhouettes,
    )


def prior_radius(noise: float, n: int) -> float:
    """`P`: the distance a new run of a job falls within, from a centroid of its n runs, when
    a run's expected squared distance from its job's mean is `noise`."""
    return MARGIN * math.sqrt((1 + 1 / max(n, 1)) * noise)


def separation(noise: float) -> float:
    """The typical distance between two single runs of one job, √(2·noise). No margin: k-means
    centroids of one job split in two are closer than that, two jobs' centroids are not."""
    return math.sqrt(2 * noise)


def _min_gap(centroids: np.ndarray) -> float:
    c = np.asarray(centroids, dtype=float)
    gaps = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    return float(gaps[~np.eye(len(c), dtype=bool)].min())


def thresholds(
    labels: np.ndarray, distances: np.ndarray, k: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """Per-cluster distance thresholds: the learnt rule blended with `prior` (module doc)."""
    members = [distances[labels == c] for c in range(k)]
    own = {c: _spread(m) for c, m in enumerate(members) if len(m) >= MIN_MEMBERS}
    pooled = float(np.median(list(own.values()))) if own else _spread(distances)
    learnt = np.array(
        [own[c] if c in own else max(pooled, _spread(m, np.max)) for c, m in enumerate(members)]
    )
    if prior is not None:
        extra = np.array([len(m) - 1 for m in members], dtype=float)
        learnt = np.sqrt((PRIOR_WEIGHT * prior**2 + extra * learnt**2) / (PRIOR_WEIGHT + extra))
    return np.maximum(learnt, THRESHOLD_FLOOR)


def _spread(d: np.ndarray, stat: Any = None) -> float:
    """MARGIN × √((n+1)/(n−1)) × a statistic (default: the PERCENTILE) of n ≥ 2 distances."""
    n = len(d)
    if n < 2:
        return 0.0
    value = float(stat(d)) if stat is not None else float(np.percentile(d, PERCENTILE))
    return MARGIN * math.sqrt((n + 1) / (n - 1)) * value
