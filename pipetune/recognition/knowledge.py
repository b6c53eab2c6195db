"""The knowledge table: (cluster, batch size) → the best measured system setting per job.

A cell is filled from observations that carry probe results; the best probe is chosen with
probing's own `select_best` and objective, so a cell says what live probing would have chosen.

A cell holds one entry per job profile: a k-means cluster can hold several jobs (k is capped,
and jobs whose counters differ little share one), and their best settings need not agree. Each
entry keeps the mean profile (in the model's noise units) of the observations it learnt from
(`center`, the batch size left out) and their spread; an observation belongs to the nearest
entry within `radius(entry)` of it (the model's run-to-run noise radius, blended with the
entry's own spread as cluster thresholds are), else it starts a new entry. A look-up hits only an
entry within that radius: a profile that matches the cluster but none of its jobs is a miss,
not another job's setting.

When a later observation of an entry chooses the same setting, its count goes up and its
measurements become the latest ones. When it chooses a *different* setting, the knowledge is
stale: the fresh choice replaces it with a count of 1, and the replaced entry goes to a short
history (the last `HISTORY_LIMIT` replacements) for `pipetune clustering show`.

Cells are keyed by cluster id, and ids change when the model is refitted, so after every fit (and
on load) the table is rebuilt by replaying all stored observations in the order they were
observed.

Nearest-batch rule (off by default): a batch size with no cell in the cluster may borrow the cell
of the nearest batch size in that cluster, by ratio, only within a factor of `NEAREST_FACTOR`;
ties go to the cell backed by more observations, then to the smaller batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipetune.probing.objective import Objective
from pipetune.probing.selection import ProbeResult, select_best
from pipetune.recognition.features import Observation
from pipetune.records import SystemSetting

HISTORY_LIMIT = 20
NEAREST_FACTOR = 2.0


@dataclass(frozen=True)
class KnowledgeEntry:
    """The best setting of one (cluster, batch size) cell, with the probe that measured it."""

    setting: SystemSetting
    epoch_s: float
    energy_j: float | None
    energy_source: str
    objective: str  # Objective.describe() of the objective it was best by
    count: int  # observations in a row that chose this setting
    observation: int  # index of the latest observation that chose it
    job: str = ""
    center: tuple[float, ...] = ()  # mean profile (model units) of its observations
    members: int = 1  # observations averaged into `center`
    spread: float = 0.0  # Σ squared distances of those observations to `center` (Welford)

    def values(self) -> dict[str, float]:
        out = {"epoch_s": self.epoch_s}
        if self.energy_j is not None:
            out["energy_j"] = self.energy_j
        return out


@dataclass(frozen=True)
class Replaced:
    """A cell's entry that fresher probes overruled."""

    cluster: int
    batch_size: int
    entry: KnowledgeEntry
    by: SystemSetting
    observation: int  # index of the observation that overruled it


@dataclass(frozen=True)
class Found:
    """A cell for a look-up; `batch_size` differs from the asked one under the nearest rule."""

    entry: KnowledgeEntry
    batch_size: int


Radius = Callable[[KnowledgeEntry], float]  # how far a profile of the entry's job may be


def _anywhere(entry: KnowledgeEntry) -> float:
    return float("inf")


class KnowledgeTable:
    """Cells keyed by (cluster, batch size), each a list of per-job entries, and the history
    of replaced entries. Profiles are the model's vectors (noise units), batch size left out."""

    def __init__(
        self,
        cells: dict[tuple[int, int], list[KnowledgeEntry]] | None = None,
        history: Iterable[Replaced] = (),
        radius: Radius = _anywhere,
    ) -> None:
        self.cells: dict[tuple[int, int], list[KnowledgeEntry]] = {
            k: list(v) for k, v in (cells or {}).items()
        }
        self.history: list[Replaced] = list(history)[-HISTORY_LIMIT:]
        self.radius = radius

    def record(
        self,
        cluster: int,
        index: int,
        obs: Observation,
        objective: Objective,
        profile: np.ndarray | None = None,
    ) -> str:
        """Learn from observation number `index`, a member of `cluster` with standardised
        `profile` (None: one entry per cell); says what changed."""
        best = best_probe(obs.probes, objective, obs.chosen)
        if isinstance(best, str):
            return best
        z = np.zeros(0) if profile is None else np.asarray(profile, dtype=float)
        cell = self.cells.setdefault((cluster, obs.batch_size), [])
        at, _ = self._nearest(cell, z)
        old = cell[at] if at is not None else None
        agreed = old is not None and old.setting.as_dict() == best.setting.as_dict()
        n = old.members if old is not None else 0
        center, spread = z, 0.0
        if old is not None and old.center:
            previous = np.asarray(old.center)
            center = previous + (z - previous) / (n + 1)
            spread = old.spread + float(((z - previous) * (z - center)).sum())
        entry = KnowledgeEntry(
            best.setting,
            float(best.epoch_s or 0.0),
            best.energy_j,
            best.energy_source,
            objective.describe(),
            old.count + 1 if old is not None and agreed else 1,
            index,
            obs.job,
            tuple(map(float, center)),
            n + 1,
            spread,
        )
        where = f"cluster {cluster}, batch {obs.batch_size}"
        if at is None:
            cell.append(entry)
            return f"learnt {best.setting} for {where}" + (
                f" (job {len(cell)} of this cell)" if len(cell) > 1 else ""
            )
        cell[at] = entry
        assert old is not None
        if agreed:
            return f"confirmed {best.setting} for {where} ({old.count + 1} observations)"
        self.history.append(Replaced(cluster, obs.batch_size, old, best.setting, index))
        del self.history[:-HISTORY_LIMIT]
        return f"replaced stale {old.setting} by {best.setting} for {where}"

    def find(
        self,
        cluster: int,
        batch_size: int,
        nearest_batch: bool = False,
        profile: np.ndarray | None = None,
        tolerance: float = 1.0,
    ) -> Found | str:
        """The entry for (cluster, batch size) whose profile is near `profile` (within
        `tolerance` × its radius), or why none."""
        batches = sorted(b for c, b in self.cells if c == cluster)
        if not batches:
            return f"cluster {cluster} has no knowledge yet (no probed observation)"
        seen = ", ".join(map(str, batches))
        pick = batch_size
        if (cluster, batch_size) not in self.cells:
            if not nearest_batch:
                return (
                    f"cluster {cluster} has no knowledge for batch size {batch_size} (has {seen})"
                )
            near = [b for b in batches if _ratio(b, batch_size) <= NEAREST_FACTOR]
            if not near:
                return (
                    f"cluster {cluster} has no knowledge for batch size {batch_size} and none "
                    f"within ×{NEAREST_FACTOR:g} (has {seen})"
                )
            pick = min(near, key=lambda b: (_ratio(b, batch_size), -self._count(cluster, b), b))
        z = np.zeros(0) if profile is None else np.asarray(profile, dtype=float)
        cell = self.cells[(cluster, pick)]
        at, distance = self._nearest(cell, z, tolerance)
        if at is None:
            return (
                f"cluster {cluster}, batch {pick}: the profile is none of its {len(cell)} "
                f"job(s) (the nearest is {distance:.3g} away, beyond its run-to-run noise)"
            )
        return Found(cell[at], pick)

    def _nearest(
        self, cell: list[KnowledgeEntry], z: np.ndarray, tolerance: float = 1.0
    ) -> tuple[int | None, float]:
        """The entry nearest to `z` within its radius, and the nearest distance seen."""
        best, best_d, nearest_d = None, float("inf"), float("inf")
        for i, e in enumerate(cell):
            d = (
                float(np.sqrt(((np.asarray(e.center) - z) ** 2).sum()))
                if e.center and len(e.center) == len(z)
                else 0.0
            )
            nearest_d = min(nearest_d, d)
            if d <= tolerance * self.radius(e) and d < best_d:
                best, best_d = i, d
        return best, nearest_d

    def _count(self, cluster: int, batch: int) -> int:
        return max(e.count for e in self.cells[(cluster, batch)])

    @classmethod
    def rebuild(
        cls,
        members: Iterable[tuple[int, int, Observation, np.ndarray | None]],
        objective: Objective,
        radius: Radius = _anywhere,
    ) -> KnowledgeTable:
        """A table from (cluster, index, observation, profile) tuples, replayed in index order."""
        table = cls(radius=radius)
        for cluster, index, obs, z in sorted(members, key=lambda m: m[1]):
            table.record(cluster, index, obs, objective, z)
        return table

    def rows(self) -> list[tuple[int, int, KnowledgeEntry]]:
        """(cluster, batch size, entry), sorted by cluster then batch size."""
        return [(c, b, e) for (c, b), cell in sorted(self.cells.items()) for e in cell]


def best_probe(
    probes: Iterable[ProbeResult], objective: Objective, chosen: SystemSetting | None = None
) -> ProbeResult | str:
    """The probe of the setting the trial chose, else `select_best` over the probes; or why
    the observation teaches nothing. (A cell must give what live probing chose: window probes
    keep the default unless a candidate is faster with confidence, which a plain minimum of
    the paces does not know.)"""
    probes = list(probes)
    if not probes:
        return "not probed: nothing to learn"
    if chosen is not None:
        for probe in probes:
            if probe.ok and probe.setting == chosen:
                return probe
    try:
        return select_best(probes, objective)
    except ValueError as exc:  # no successful probe, or a metric the objective needs is missing
        return f"probes not usable for {objective.describe()}: {exc}"


def _ratio(a: int, b: int) -> float:
    return max(a, b) / min(a, b)
