"""k-means over standardised profiles and per-cluster distance thresholds: the `ClusterModel`.

Fit (`fit_model`), on the log-scaled, standardised features of the stored observations:

* Not fitted with fewer than `min_observations` (default 4) rows, or when all rows are
  identical; every look-up is then a miss that says so.
* k: the configured one, else the silhouette criterion: `KMeans(n_clusters=k, n_init=10,
  random_state=seed)` for k = 2 … min(8, n − 1, distinct rows), the highest silhouette score
  (on at most `SILHOUETTE_SAMPLE` rows) wins (ties: the smaller k). If even the best score
  is ≤ 0.25 ("no substantial structure", Kaufman & Rousseeuw), the rows are one job: k = 1.
* Run-to-run noise (`noise` module): every k = 1 … min(8, n − 1, distinct) is fitted, and each
  clustering's pooled within-cluster spread (n − k degrees of freedom) updates the prior of
  `NOISE_SIGMA` per feature (worth `PRIOR_WEIGHT` pseudo degrees of freedom).
* k candidates that split one job by its noise are rejected: a clustering counts only if every
  pair of centroids is farther apart than two runs of one job typically are, √(2·noise) with
  the noise of that clustering (`separation`; a clustering that merges jobs counts their gap as
  noise, so it is judged by that). k-means halves of one job's runs are ~1.6 σ apart along one
  direction while √(2·noise) grows with √(2·d), so they fail; when no k ≥ 2 passes, k = 1.
* The model's noise (`ClusterModel.noise`, stored with it) is the smallest of the candidates'
  estimates: what the best-fitting clustering leaves unexplained. A clustering with too few
  clusters (a given or capped k, or k = 1 by silhouette) would count the gaps between the jobs
  it merges as noise; the finest ones have few degrees of freedom, so the prior holds them up.
* Threshold of cluster c, on the Euclidean distance to its centroid in standardised units,
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
        z = self.centroids[cluster]
        raw = self.scaler.inverse(z)
        order = np.argsort(-np.abs(z))[:top]
        return [
            {"feature": self.scaler.names[i], "z": round(float(z[i]), 3), "value": float(raw[i])}
            for i in order
        ]

    def standardise(self, features: dict[str, float]) -> np.ndarray:
        """One observation's raw features → a standardised row; `FeatureMismatch` if they differ."""
        return self.scaler.transform(self.scaler.row(features))


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
        fits = {c: _kmeans(z, c, seed) for c in range(1, min(MAX_K, n - 1, distinct) + 1)}
        noises = {c: run_noise.estimate(scaler, z, km.labels_) for c, km in fits.items()}
        if k is None:
            k, rule, silhouettes = _choose_k(z, fits, noises, seed)
        else:
            rule, silhouettes = "given", {}
            fits[k] = fits.get(k) or _kmeans(z, k, seed)
            noises[k] = run_noise.estimate(scaler, z, fits[k].labels_)
    km = fits[k]
    centroids = np.asarray(km.cluster_centers_, dtype=float)
    labels = np.asarray(km.labels_, dtype=int)
    distances = np.sqrt(((z - centroids[labels]) ** 2).sum(axis=1))
    sizes = tuple(int((labels == c).sum()) for c in range(k))
    noise = min(noises.values())  # module doc: what the best-fitting clustering leaves
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
    )
    return model, labels


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


def _choose_k(
    z: np.ndarray, fits: dict[int, Any], noises: dict[int, float], seed: int
) -> tuple[int, str, dict[int, float]]:
    """(k, rule, silhouettes): the best silhouette over the k ≥ 2 whose centroids are farther
    apart than two runs of one job under their own clustering's noise, else 1."""
    from sklearn.metrics import silhouette_score

    silhouettes: dict[int, float] = {}
    for candidate, km in fits.items():
        if candidate < 2 or _min_gap(km.cluster_centers_) <= separation(noises[candidate]):
            continue  # one cluster, or splits runs of one job by their noise
        sample = min(len(z), SILHOUETTE_SAMPLE)
        silhouettes[candidate] = float(
            silhouette_score(z, km.labels_, sample_size=sample, random_state=seed)
        )
    k, rule = _best_silhouette(silhouettes, max(fits))
    return k, rule, silhouettes


def _best_silhouette(silhouettes: dict[int, float], highest: int) -> tuple[int, str]:
    """The k with the best silhouette (ties: the smaller), or 1 without structure."""
    if not silhouettes:
        if highest >= 2:
            return 1, (
                f"one cluster: every k = 2..{highest} put centroids closer than two runs of "
                "one job are apart under the noise of its clustering"
            )
        return 1, "one cluster: too few profiles to compare k = 2.. by silhouette"
    k = max(silhouettes, key=lambda c: (silhouettes[c], -c))
    best = silhouettes[k]
    if best <= NO_STRUCTURE_SILHOUETTE:
        return 1, (
            f"no structure: best silhouette {best:.3f} (k = {k}) "
            f"<= {NO_STRUCTURE_SILHOUETTE}, so one cluster"
        )
    return k, f"silhouette: best {best:.3f} at k = {k} over k = 2..{max(silhouettes)}"


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
