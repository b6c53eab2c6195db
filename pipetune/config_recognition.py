"""The `clustering` section of pipetune.conf: recognising recurring jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, is_number, show


@dataclass(frozen=True)
class RecognitionConfig:
    enabled: bool = True
    path: Path = Path("clustering/model.json")
    refit_every: int = 3
    min_observations: int = 2  # a job seen twice can be recognised the third time
    k: int | None = None  # None: chosen by silhouette
    nearest_batch: bool = False
    batch_parameter: str = "batch_size"
    tolerance: float = 1.0  # scales the learnt thresholds: > 1 is more lenient


def parse_recognition(
    c: Checker, raw: Any, base_dir: Path, hyperparameters: set[str]
) -> RecognitionConfig:
    p = "$.clustering"
    if not isinstance(raw, dict):
        c.problem(p, "an object", show(raw))
        return RecognitionConfig()
    keys = {
        "enabled",
        "path",
        "refitEvery",
        "minObservations",
        "k",
        "nearestBatch",
        "batchParameter",
        "tolerance",
    }
    c.unknown_keys(p, raw, keys)
    d = RecognitionConfig()
    enabled = raw.get("enabled", True)
    nearest = raw.get("nearestBatch", False)
    for key, value in (("enabled", enabled), ("nearestBatch", nearest)):
        if not isinstance(value, bool):
            c.problem(f"{p}.{key}", "true or false", show(value))
    k = raw.get("k")
    if k is not None:
        k = c.positive_int(f"{p}.k", k)
    tolerance = raw.get("tolerance", d.tolerance)
    if not is_number(tolerance) or tolerance <= 0:
        c.problem(f"{p}.tolerance", "a positive factor on the learnt thresholds", show(tolerance))
        tolerance = d.tolerance
    batch = c.string(f"{p}.batchParameter", raw.get("batchParameter", d.batch_parameter))
    if enabled is True and batch and batch not in hyperparameters:
        c.problem(
            f"{p}.batchParameter",
            f"the hyperparameter holding the batch size, one of {sorted(hyperparameters)}",
            f'"{batch}"',
        )
    return RecognitionConfig(
        enabled=enabled is True,
        path=base_dir / c.string(f"{p}.path", raw.get("path", str(d.path))),
        refit_every=c.positive_int(f"{p}.refitEvery", raw.get("refitEvery", d.refit_every)),
        min_observations=c.positive_int(
            f"{p}.minObservations", raw.get("minObservations", d.min_observations)
        ),
        k=k,
        nearest_batch=nearest is True,
        batch_parameter=batch,
        tolerance=float(tolerance),
    )
