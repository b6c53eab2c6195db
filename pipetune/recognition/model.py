"""The `Recognizer`: look-ups and online learning over a fitted `ClusterModel` (`clusters`)
and the knowledge table (`knowledge`).

Look-up is numpy only (no scikit-learn): build the vector by name, scale, one distance per
centroid, one dict look-up in the knowledge table.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipetune.probing.objective import Objective
from pipetune.recognition.clusters import (
    MARGIN,
    THRESHOLD_FLOOR,
    ClusterModel,
    Unfitted,
    fit_model,
    prior_radius,
    threshold_rule,
)
from pipetune.recognition.features import FeatureSpec, Observation
from pipetune.recognition.knowledge import NEAREST_FACTOR, KnowledgeEntry, KnowledgeTable
from pipetune.recognition.noise import EXACT_FEATURES, PRIOR_WEIGHT
from pipetune.records import SystemSetting


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
        """A profile in the model's (noise) units as the knowledge table compares jobs: batch
        size left out."""
        assert self.model is not None
        names = self.model.scaler.names
        return np.where([n in EXACT_FEATURES for n in names], 0.0, z)

    def _radius(self, entry: KnowledgeEntry) -> float:
        """How far a new run of an entry's job may fall from the mean of its n runs: the
        model's learnt run-to-run noise blended with their own spread, as cluster thresholds
        are."""
        assert self.model is not None
        n = entry.members
        prior = prior_radius(self.model.noise, n)
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
            noise=m.noise,
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
