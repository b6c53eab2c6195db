"""The recognizer file's content: its format and version, what makes it unusable, and a
recognizer as that content (`to_data`; `model_file_read.from_data` is the inverse).

Layout (`"format": "pipetune-recognition"`, `"version": 1`): `settings`, `objective`, `status`,
`pending`, `model` (null while unfitted, else feature names, scaler mean/std/ref, k and how it
was chosen, centroids k × d, thresholds, sizes, and `noise`: the learnt run-to-run noise that
the knowledge table's entry radii use, and `weights`: per feature, the factor from standardised
to noise units that centroids, thresholds and entry centres are measured in, see `noise`),
`knowledge` and its replaced `history`, and
the raw `observations` the model can be refitted from. Numbers are JSON numbers; NaN is never
written. A model without `noise` (saved before it was learnt) is read with the noise prior alone,
which is what it was fitted with; one without `weights` (or null) measures in the scaler's
standardised units, as it was fitted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipetune.errors import PipeTuneError, Problem
from pipetune.recognition import knowledge as kn
from pipetune.recognition import model as md
from pipetune.recognition.clusters import ClusterModel, threshold_rule
from pipetune.recognition.features import Observation

FORMAT = "pipetune-recognition"
VERSION = 1


class ModelUnusable(PipeTuneError):
    """A stored recognition model cannot be used; `problems` says exactly why."""

    def __init__(self, path: Path | str, problems: list[Problem] | str) -> None:
        self.path = str(path)
        self.problems: list[Problem | str] = (
            [problems] if isinstance(problems, str) else list(problems)
        )
        lines = [f"recognition model {self.path} is unusable:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def to_data(rec: md.Recognizer) -> dict[str, Any]:
    """`rec` as JSON-safe plain data (the file's content)."""
    model = rec.model
    return {
        "format": FORMAT,
        "version": VERSION,
        "settings": rec.settings.to_dict(),
        "objective": {"weights": dict(rec.objective.weights)},
        "status": rec.status,
        "pending": rec.pending,
        "model": None if model is None else _model_data(model),
        "knowledge": [_entry_data(e, c, b) for c, b, e in rec.knowledge.rows()],
        "history": [_replaced_data(r) for r in rec.knowledge.history],
        "observations": [_observation_data(o) for o in rec.observations],
    }


def _model_data(m: ClusterModel) -> dict[str, Any]:
    return {
        "feature_names": list(m.scaler.names),
        "scaler": {
            "mean": list(m.scaler.mean),
            "std": list(m.scaler.std),
            "ref": list(m.scaler.ref),
        },
        "k": m.k,
        "k_rule": m.k_rule,
        "silhouette": {str(k): v for k, v in m.silhouettes.items()},
        "centroids": [[float(x) for x in row] for row in m.centroids],
        "thresholds": [float(t) for t in m.thresholds],
        "noise": m.noise,
        "weights": None if m.weights is None else [float(w) for w in m.weights],
        "sizes": list(m.sizes),
        "fitted_on": m.fitted_on,
        "threshold_rule": threshold_rule(),
    }


def _entry_data(e: kn.KnowledgeEntry, cluster: int, batch: int) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "batch_size": batch,
        "setting": e.setting.as_dict(),
        "epoch_s": e.epoch_s,
        "energy_j": e.energy_j,
        "energy_source": e.energy_source,
        "objective": e.objective,
        "count": e.count,
        "observation": e.observation,
        "job": e.job,
    }


def _replaced_data(r: kn.Replaced) -> dict[str, Any]:
    return {
        **_entry_data(r.entry, r.cluster, r.batch_size),
        "by": r.by.as_dict(),
        "replaced_by_observation": r.observation,
    }


def _observation_data(o: Observation) -> dict[str, Any]:
    return {
        "job": o.job,
        "batch_size": o.batch_size,
        "epoch_s": o.epoch_s,
        "samples": o.samples,
        "energy_j": o.energy_j,
        "energy_source": o.energy_source,
        "profile": o.profile.to_dict(),
        "probes": [
            {
                "setting": p.setting.as_dict(),
                "epoch_s": p.epoch_s,
                "energy_j": p.energy_j,
                "energy_source": p.energy_source,
                "error": p.error,
            }
            for p in o.probes
        ],
        "chosen": o.chosen.as_dict() if o.chosen is not None else None,
    }
