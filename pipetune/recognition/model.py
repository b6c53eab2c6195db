"""k-means over standardised profiles, per-cluster distance thresholds, and the `Recognizer`.

Fit (`fit_model`), on the log-scaled, standardised features of the stored observations:

* Not fitted with fewer than `min_observations` (default 4) rows, or when all rows are
  identical; every look-up is then a miss that says so.
* k: the configured one, else the silhouette criterion: `KMeans(n_clusters=k, n_init=10,
  random_state=seed)` for k = 2 … min(8, n − 1, distinct rows), the highest silhouette score
  (on at most `SILHOUETTE_SAMPLE` rows) wins (ties: the smaller k). If even the best score
  is ≤ 0.25 ("no substantial structure", Kaufman & Rousseeuw), the rows are one job: k = 1.
* k candidates that split one job by its noise are rejected: a clustering counts only if every
  pair of centroids is farther apart than two runs of one job typically are under the noise
  prior (`separation`, below); when no k ≥ 2 passes, k = 1.
* Threshold of cluster c, on the Euclidean distance to its centroid in standardised units,
  blends what the members show with a prior on run-to-run noise, so that a cluster of one or
  two runs is neither a pin-prick (the original's failure: a repeat missed) nor unbounded:

  - *learnt* `O`: `MARGIN` (1.5) × √((n+1)/(n−1)) × the `PERCENTILE` (95th) of its n members'
    distances, when it has at least `MIN_MEMBERS` (3) members. The √ factor turns members'
    distances into a new run's: the centroid is fitted to its members, so with isotropic noise
    a member's expected squared distance is (n−1)/n·σ²d and a new run's (n+1)/n·σ²d. A smaller
    cluster gets the median of the other clusters' learnt thresholds (or, if no cluster is big
    enough, the rule above on all members' distances pooled), or its own rule on its largest
    member distance if that is larger.
  - *prior* `P`: a new run's expected distance if every feature varied by `NOISE_SIGMA` (0.25,
    in log units, ~28 %: what runs of one job showed here) between runs, `MARGIN` ×
    √((1 + 1/n) · Σ_f (NOISE_SIGMA / std_f)²), the batch size excepted (it is exact). It is
    in the scaler's units, so it shrinks by itself when the model knows several jobs (their
    spread makes each std_f large).
  - threshold = √((w·P² + (n−1)·O²) / (w + n − 1)) with w = `PRIOR_WEIGHT` (3) pseudo-runs:
    the prior dominates at n = 1–2 and fades as members accumulate (7 % of the weight at
    n = 40). Every threshold is at least `THRESHOLD_FLOOR` (0.5).

  A profile farther than the threshold of its nearest centroid is an unknown job.

Look-up is numpy only (no scikit-learn): build the vector by name, scale, one distance per
centroid, one dict look-up in the knowledge table.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipetune.probing.objective import Objective
from pipetune.recognition.features import BATCH_SIZE, FeatureSpec, Observation, Scaler
from pipetune.recognition.knowledge import NEAREST_FACTOR, KnowledgeEntry, KnowledgeTable
from pipetune.records import SystemSetting

MAX_K = 8
SILHOUETTE_SAMPLE = 2000  # silhouette is O(n²): scored on a seeded sample of this many rows
NO_STRUCTURE_SILHOUETTE = 0.25
PERCENTILE = 95.0
MARGIN = 1.5
MIN_MEMBERS = 3
THRESHOLD_FLOOR = 0.5
NOISE_SIGMA = 0.25
PRIOR_WEIGHT = 3.0
EXACT_FEATURES = frozenset({BATCH_SIZE})  # descriptors without run-to-run noise


@dataclass(frozen=True)
class ClusterModel:
    """A fitted model as plain data: scaler, centroids (k × d) and per-cluster thresholds."""

    scaler: Scaler
    centroids: np.ndarray
    thresholds: np.ndarray
    sizes: tuple[int, ...]
    k_rule: str  # how k was chosen, in words
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

    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    # Tiny data: one thread is several times faster than OpenMP's start-up on every fit.
    with threadpool_limits(1):
        fits: dict[int, Any] = {}
        silhouettes: dict[int, float] = {}
        rule = "given"
        if k is None:
            apart = separation(scaler)
            for candidate in range(2, min(MAX_K, n - 1, distinct) + 1):
                fits[candidate] = KMeans(n_clusters=candidate, n_init=10, random_state=seed).fit(z)
                if _min_gap(fits[candidate].cluster_centers_) <= apart:
                    continue  # splits runs of one job by their noise
                silhouettes[candidate] = float(
                    silhouette_score(
                        z,
                        fits[candidate].labels_,
                        sample_size=min(n, SILHOUETTE_SAMPLE),
                        random_state=seed,
                    )
                )
            k, rule = _choose_k(silhouettes, apart, len(fits))
        km = fits.get(k) or KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    centroids = np.asarray(km.cluster_centers_, dtype=float)
    labels = np.asarray(km.labels_, dtype=int)
    distances = np.sqrt(((z - centroids[labels]) ** 2).sum(axis=1))
    sizes = tuple(int((labels == c).sum()) for c in range(k))
    prior = np.array([prior_radius(scaler, size) for size in sizes])
    model = ClusterModel(
        scaler, centroids, thresholds(labels, distances, k, prior), sizes, rule, silhouettes, n
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


def _choose_k(silhouettes: dict[int, float], apart: float, tried: int) -> tuple[int, str]:
    """The k with the best silhouette (ties: the smaller), or 1 without structure."""
    if not silhouettes:
        if tried:
            return 1, (
                f"one cluster: every k = 2..{tried + 1} put centroids closer than {apart:.3g}, "
                "the distance between two runs of one job under the noise prior"
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


def _noise_terms(scaler: Scaler) -> float:
    """Σ_f (NOISE_SIGMA / std_f)²: a run's expected squared distance from the job's true mean."""
    noisy = np.array([name not in EXACT_FEATURES for name in scaler.names], dtype=float)
    return float((noisy * (NOISE_SIGMA / np.asarray(scaler.std)) ** 2).sum())


def prior_radius(scaler: Scaler, n: int) -> float:
    """`P`: the distance a new run of a job falls within, from a centroid of its n runs."""
    return MARGIN * math.sqrt((1 + 1 / max(n, 1)) * _noise_terms(scaler))


def separation(scaler: Scaler) -> float:
    """The typical distance between two single runs of one job under the prior, √(2·Σ_f …).
    No margin: k-means centroids of one job split in two are closer than that, two jobs'
    centroids are not."""
    return math.sqrt(2 * _noise_terms(scaler))


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


@dataclass(frozen=True)
class Recognition:
    """The answer of a look-up. On a hit, `setting` is the best known setting for the job."""

    hit: bool
    reason: str
    cluster: int | None = None
    distance: float | None = None
    threshold: float | None = None
    setting: dict[str, str] | None = None
    metric: str | None = None  # the objective the setting was best by
    values: dict[str, float] | None = None  # its measured epoch_s (and energy_j)
    observations: int = 0  # how many observations in a row chose it
    batch_size_used: int | None = None  # set when the nearest-batch rule supplied the cell
    learnt_from: str | None = None  # the job label of the observation the cell was learnt from

    def system_setting(self) -> SystemSetting | None:
        return SystemSetting.of(self.setting) if self.setting is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class RecognizerSettings:
    """How the recognizer fits and answers; stored with the model."""

    k: int | None = None  # None: chosen by silhouette
    refit_every: int = 3  # refit after this many new observations
    min_observations: int = 4
    seed: int = 0
    nearest_batch: bool = False
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "refit_every": self.refit_every,
            "min_observations": self.min_observations,
            "seed": self.seed,
            "nearest_batch": self.nearest_batch,
            "features": self.features.to_dict(),
        }

    def __post_init__(self) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be >= 1 or None, got {self.k}")
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {self.refit_every}")
        if self.min_observations < 2:
            raise ValueError(f"min_observations must be >= 2, got {self.min_observations}")


class Recognizer:
    """Recognises recurring jobs and learns from every observed trial.

    The tuner calls `lookup(obs)` after a trial's profiling epoch (a hit skips probing), and
    `observe(obs)` when the trial's probes are done (or with no probes, after a hit). `observe`
    keeps the raw observation, updates the knowledge table, and refits after every
    `refit_every` new observations (while unfitted: after each one, once there are
    `min_observations`); after each fit the table is rebuilt from all stored observations,
    because cluster ids change between fits.
    """

    def __init__(
        self,
        objective: Objective,
        settings: RecognizerSettings | None = None,
        status: str = "model not fitted: no observations yet",
    ) -> None:
        self.objective = objective
        self.settings = settings or RecognizerSettings()
        self.observations: list[Observation] = []
        self.model: ClusterModel | None = None
        self.knowledge = KnowledgeTable()
        self.status = status  # why unfitted, or what the fit used
        self.pending = 0  # observations since the last fit

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def lookup(self, obs: Observation, tolerance: float = 1.0) -> Recognition:
        """Best known setting for `obs`, or a miss with its reason. `tolerance` scales every
        learnt threshold (> 1 accepts noisier repeats, e.g. while a cluster has few members).

        Raises:
            FeatureMismatch: `obs` does not have exactly the model's features.
        """
        if self.model is None:
            return Recognition(False, self.status)
        z = self.model.standardise(self.settings.features.raw(obs))
        cluster, distance = self.model.nearest(z)
        threshold = float(self.model.thresholds[cluster]) * tolerance
        if distance > threshold:
            reason = (
                f"unknown job: distance {distance:.3g} > threshold {threshold:.3g} "
                f"of the nearest cluster {cluster}"
            )
            return Recognition(
                False, reason, cluster=cluster, distance=distance, threshold=threshold
            )
        found = self.knowledge.find(
            cluster, obs.batch_size, self.settings.nearest_batch, self._job_vector(z), tolerance
        )
        if isinstance(found, str):
            return Recognition(
                False, found, cluster=cluster, distance=distance, threshold=threshold
            )
        entry = found.entry
        reason = (
            f"recognised as cluster {cluster} (distance {distance:.3g} <= {threshold:.3g}): "
            f"{entry.setting}, best by {entry.objective} in {entry.count} observation(s)"
        )
        borrowed = found.batch_size != obs.batch_size
        if borrowed:
            reason += (
                f", borrowed from batch size {found.batch_size}"
                f" (nearest within ×{NEAREST_FACTOR:g})"
            )
        return Recognition(
            True,
            reason,
            cluster=cluster,
            distance=distance,
            threshold=threshold,
            setting=entry.setting.as_dict(),
            metric=entry.objective,
            values=entry.values(),
            observations=entry.count,
            batch_size_used=found.batch_size if borrowed else None,
            learnt_from=entry.job or None,
        )

    def observe(self, obs: Observation) -> str:
        """Store `obs`, learn its probes, refit when due; says what happened."""
        index = len(self.observations)
        self.observations.append(obs)
        self.pending += 1
        note = self._learn(index, obs)
        if self.model is None or self.pending >= self.settings.refit_every:
            fitted = self.fit()  # while unfitted, every time (cheap below `min_observations`)
            note += f"; refitted: {self.status}" if fitted else f"; {self.status}"
        return note

    def fit(self) -> bool:
        """Refit from all stored observations and rebuild the knowledge table; True if fitted."""
        self.pending = 0
        specs = [self.settings.features.raw(o) for o in self.observations]
        if not specs:
            self._unfit("model not fitted: no observations yet")
            return False
        names = _common_names(specs)
        used = [i for i, f in enumerate(specs) if tuple(f) == names]
        rows = np.array([[specs[i][n] for n in names] for i in used], dtype=float)
        outcome = fit_model(
            names,
            rows,
            k=self.settings.k,
            seed=self.settings.seed,
            min_observations=self.settings.min_observations,
        )
        left_out = len(self.observations) - len(used)
        extra = f" ({left_out} left out: a different feature set)" if left_out else ""
        if isinstance(outcome, Unfitted):
            self._unfit(outcome.reason + extra)
            return False
        self.model, _ = outcome
        self.status = f"fitted on {len(used)} of {len(self.observations)} observations{extra}"
        self.rebuild_knowledge()
        return True

    def rebuild_knowledge(self) -> None:
        """The table from the stored observations under the current model: those it was fitted
        on by their nearest centroid (their k-means labels), later ones only within a cluster's
        threshold (as `observe` learnt them). Cluster ids change between fits; this is how
        the table follows them, and how a loaded model gets its table."""
        m = self.model
        if m is None:
            self.knowledge = KnowledgeTable()
            return
        fitted = len(self.observations) - self.pending
        members = []
        for i, obs in enumerate(self.observations):
            features = self.settings.features.raw(obs)
            if features.keys() != set(m.scaler.names):
                continue
            z = m.standardise(features)
            cluster, distance = m.nearest(z)
            if i < fitted or distance <= m.thresholds[cluster]:
                members.append((cluster, i, obs, self._job_vector(z)))
        self.knowledge = KnowledgeTable.rebuild(members, self.objective, self._radius)

    def _job_vector(self, z: np.ndarray) -> np.ndarray:
        """A standardised profile as the knowledge table compares jobs: batch size left out."""
        assert self.model is not None
        names = self.model.scaler.names
        return np.where([n in EXACT_FEATURES for n in names], 0.0, z)

    def _radius(self, entry: KnowledgeEntry) -> float:
        """How far a new run of an entry's job may fall from the mean of its n runs: the
        noise prior blended with their own spread, as cluster thresholds are."""
        assert self.model is not None
        n = entry.members
        prior = prior_radius(self.model.scaler, n)
        if n < 2:
            return max(prior, THRESHOLD_FLOOR)
        own = MARGIN * math.sqrt(entry.spread / (n - 1) * (1 + 1 / n))
        blended = math.sqrt((PRIOR_WEIGHT * prior**2 + (n - 1) * own**2) / (PRIOR_WEIGHT + n - 1))
        return max(blended, THRESHOLD_FLOOR)

    def rebuilt(self, objective: Objective, settings: RecognizerSettings) -> Recognizer:
        """The same observations under another objective and settings: refitted, table rebuilt."""
        other = Recognizer(objective, settings, self.status)
        other.observations = list(self.observations)
        other.fit()
        return other

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary for `pipetune clustering show`."""
        out: dict[str, Any] = {
            "fitted": self.model is not None,
            "status": self.status,
            "observations": len(self.observations),
            "pending": self.pending,
            "objective": self.objective.describe(),
            "settings": self.settings.to_dict(),
            "knowledge": [
                {
                    "cluster": c,
                    "batch_size": b,
                    "setting": e.setting.as_dict(),
                    "metric": e.objective,
                    "values": e.values(),
                    "count": e.count,
                    "job": e.job,
                }
                for c, b, e in self.knowledge.rows()
            ],
            "replaced": [
                {
                    "cluster": h.cluster,
                    "batch_size": h.batch_size,
                    "setting": h.entry.setting.as_dict(),
                    "count": h.entry.count,
                    "replaced_by": h.by.as_dict(),
                    "at_observation": h.observation,
                }
                for h in self.knowledge.history
            ],
        }
        if (m := self.model) is None:
            return out
        jobs: list[Counter[str]] = [Counter() for _ in range(m.k)]
        for obs in self.observations:
            features = self.settings.features.raw(obs)
            if features.keys() == set(m.scaler.names):
                jobs[m.nearest(m.standardise(features))[0]][obs.job or "?"] += 1
        out.update(
            k=m.k,
            k_rule=m.k_rule,
            silhouette={str(k): round(v, 4) for k, v in m.silhouettes.items()},
            feature_names=list(m.scaler.names),
            threshold_rule=threshold_rule(),
            clusters=[
                {
                    "cluster": c,
                    "size": m.sizes[c],
                    "threshold": float(m.thresholds[c]),
                    "jobs": dict(jobs[c]),
                    "distinctive": m.distinctive(c),
                }
                for c in range(m.k)
            ],
        )
        return out

    def _learn(self, index: int, obs: Observation) -> str:
        if self.model is None:
            return "stored (model not fitted yet)"
        features = self.settings.features.raw(obs)
        if features.keys() != set(self.model.scaler.names):
            return "stored (feature set differs from the model's)"
        z = self.model.standardise(features)
        cluster, distance = self.model.nearest(z)
        if distance > self.model.thresholds[cluster]:
            return "stored as an unknown job (learnt at the next refit)"
        return self.knowledge.record(cluster, index, obs, self.objective, self._job_vector(z))

    def _unfit(self, reason: str) -> None:
        self.model = None
        self.status = reason
        self.knowledge = KnowledgeTable()


def _common_names(specs: list[dict[str, float]]) -> tuple[str, ...]:
    """The feature set shared by most observations; ties go to the most recent one's."""
    counts = Counter(tuple(f) for f in specs)
    best = max(counts.values())
    return next(tuple(f) for f in reversed(specs) if counts[tuple(f)] == best)
