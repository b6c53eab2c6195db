"""What the best probe is chosen by: the metrics a probe measures and the weights over them.

Imports nothing from the package, so the config layer can build an `Objective` without
importing the probing code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Metric(enum.StrEnum):
    """A measurement a probe is compared on (its name in `probing.select_by`)."""

    DURATION = "duration"  # the epoch's steady time
    ENERGY = "energy"  # the epoch's joules


OBJECTIVE_METRICS: tuple[str, ...] = tuple(m.value for m in Metric)


@dataclass(frozen=True)
class Objective:
    """Weights of the probe-selection objective; each metric is normalised by the default probe.

    Raises:
        ValueError: a weight names no `Metric`.
    """

    weights: dict[str, float]

    def __post_init__(self) -> None:
        unknown = [m for m in self.weights if m not in OBJECTIVE_METRICS]
        if unknown:
            raise ValueError(
                f"objective weights: expected metrics among {list(OBJECTIVE_METRICS)}, "
                f"found {unknown}"
            )

    def describe(self) -> str:
        if len(self.weights) == 1:
            return next(iter(self.weights))
        return " + ".join(f"{w:g}*{m}" for m, w in self.weights.items())
