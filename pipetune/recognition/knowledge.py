"""The knowledge table: (cluster, batch size) → the best measured system setting.

A cell is filled from observations that carry probe results; the best probe is chosen with
probing's own `select_best` and objective, so a cell says what live probing would have chosen.
When a later observation of the same cell chooses the same setting, the cell's count goes up and
its measurements become the latest ones. When it chooses a *different* setting, the knowledge is
stale: the fresh choice replaces it with a count of 1, and the replaced entry goes to a short
history (the last `HISTORY_LIMIT` replacements) for `pipetune clustering show`.

Cells are keyed by cluster id, and ids change when the model is refitted, so after every fit the
table is rebuilt by replaying all stored observations in the order they were observed.

Nearest-batch rule (off by default): a batch size with no cell in the cluster may borrow the cell
of the nearest batch size in that cluster, by ratio, only within a factor of `NEAREST_FACTOR`;
ties go to the cell backed by more observations, then to the smaller batch size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipetune.config import Objective
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


class KnowledgeTable:
    """Cells keyed by (cluster, batch size), and the history of replaced entries."""

    def __init__(
        self,
        cells: dict[tuple[int, int], KnowledgeEntry] | None = None,
        history: Iterable[Replaced] = (),
    ) -> None:
        self.cells: dict[tuple[int, int], KnowledgeEntry] = dict(cells or {})
        self.history: list[Replaced] = list(history)[-HISTORY_LIMIT:]

    def record(self, cluster: int, index: int, obs: Observation, objective: Objective) -> str:
        """Learn from observation number `index`, a member of `cluster`; says what changed."""
        best = best_probe(obs.probes, objective)
        if isinstance(best, str):
            return best
        key = (cluster, obs.batch_size)
        old = self.cells.get(key)
        agreed = old is not None and old.setting.as_dict() == best.setting.as_dict()
        self.cells[key] = KnowledgeEntry(
            best.setting,
            float(best.epoch_s or 0.0),
            best.energy_j,
            best.energy_source,
            objective.describe(),
            old.count + 1 if old is not None and agreed else 1,
            index,
            obs.job,
        )
        where = f"cluster {cluster}, batch {obs.batch_size}"
        if old is None:
            return f"learnt {best.setting} for {where}"
        if agreed:
            return f"confirmed {best.setting} for {where} ({old.count + 1} observations)"
        self.history.append(Replaced(cluster, obs.batch_size, old, best.setting, index))
        del self.history[:-HISTORY_LIMIT]
        return f"replaced stale {old.setting} by {best.setting} for {where}"

    def find(self, cluster: int, batch_size: int, nearest_batch: bool = False) -> Found | str:
        """The cell for (cluster, batch size), or why there is none."""
        entry = self.cells.get((cluster, batch_size))
        if entry is not None:
            return Found(entry, batch_size)
        batches = sorted(b for c, b in self.cells if c == cluster)
        if not batches:
            return f"cluster {cluster} has no knowledge yet (no probed observation)"
        seen = ", ".join(map(str, batches))
        if not nearest_batch:
            return f"cluster {cluster} has no knowledge for batch size {batch_size} (has {seen})"
        near = [b for b in batches if _ratio(b, batch_size) <= NEAREST_FACTOR]
        if not near:
            return (
                f"cluster {cluster} has no knowledge for batch size {batch_size} and none within "
                f"×{NEAREST_FACTOR:g} (has {seen})"
            )
        pick = min(near, key=lambda b: (_ratio(b, batch_size), -self.cells[(cluster, b)].count, b))
        return Found(self.cells[(cluster, pick)], pick)

    @classmethod
    def rebuild(
        cls, members: Iterable[tuple[int, int, Observation]], objective: Objective
    ) -> KnowledgeTable:
        """A table from (cluster, index, observation) triples, replayed in index order."""
        table = cls()
        for cluster, index, obs in sorted(members, key=lambda m: m[1]):
            table.record(cluster, index, obs, objective)
        return table

    def rows(self) -> list[tuple[int, int, KnowledgeEntry]]:
        """(cluster, batch size, entry), sorted by cluster then batch size."""
        return [(c, b, e) for (c, b), e in sorted(self.cells.items())]


def best_probe(probes: Iterable[ProbeResult], objective: Objective) -> ProbeResult | str:
    """`select_best` over the probes, or why the observation teaches nothing."""
    probes = list(probes)
    if not probes:
        return "not probed: nothing to learn"
    try:
        return select_best(probes, objective)
    except ValueError as exc:  # no successful probe, or a metric the objective needs is missing
        return f"probes not usable for {objective.describe()}: {exc}"


def _ratio(a: int, b: int) -> float:
    return max(a, b) / min(a, b)
