"""Hyperparameter search through Optuna's ask/tell interface (random, grid or TPE; seeded).

Each hyperparameter gets its own distribution, so each is drawn from its own list (the
original drew every one from the last list). In `v2` mode the system parameters are extra
categorical dimensions named `system.<name>`.

A replay searches the configurations its trace recorded instead (`configs`): one categorical
dimension over their indices, each turned back into its hyperparameters.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, assert_never

from pipetune.config import HyperParameter, SystemParameter
from pipetune.config_search import Sampler
from pipetune.records import SystemSetting

SYSTEM_PREFIX = "system."
CONFIG_INDEX = "recorded_config"


@dataclass(frozen=True)
class Suggestion:
    """One trial's sampled configuration."""

    number: int
    hyperparameters: dict[str, Any]
    system: SystemSetting | None  # only when the search samples system parameters (v2)


class HyperparameterSearch:
    """A seeded Optuna study driven one trial at a time."""

    def __init__(
        self,
        hyperparameters: tuple[HyperParameter, ...],
        sampler: str,
        seed: int,
        system_parameters: tuple[SystemParameter, ...] = (),
        configs: list[dict[str, Any]] | None = None,
    ) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._system_names = [p.name for p in system_parameters]
        self._configs = configs
        self._distributions = _distributions(
            () if configs is not None else hyperparameters, system_parameters
        )
        if configs is not None:
            if not configs:
                raise ValueError("a search over recorded configurations needs at least one")
            self._distributions[CONFIG_INDEX] = CategoricalDistribution(list(range(len(configs))))
        self._grid_size: int | None = None
        self._study = optuna.create_study(direction="maximize", sampler=_sampler(sampler, seed))
        if sampler == Sampler.GRID:
            # Optuna's GridSampler calls study.stop() when exhausted, which ask/tell forbids;
            # enqueueing every grid point in a seeded order gives the same search.
            points = _grid_points(self._distributions, seed)
            self._grid_size = len(points)
            for point in points:
                self._study.enqueue_trial(point)
        self._open: dict[int, Any] = {}

    def planned_trials(self, requested: int) -> int:
        """A grid has a finite size; never plan more trials than it holds."""
        return min(requested, self._grid_size) if self._grid_size else requested

    def ask(self) -> Suggestion:
        trial = self._study.ask(fixed_distributions=self._distributions)
        self._open[trial.number] = trial
        return self._suggestion(trial.number, trial.params)

    def tell(self, number: int, accuracy: float | None) -> None:
        """Report a finished trial's final accuracy, or None when it failed."""
        import optuna

        trial = self._open.pop(number)
        if accuracy is None or math.isnan(accuracy):
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, accuracy)

    def _suggestion(self, number: int, params: dict[str, Any]) -> Suggestion:
        hyper = {k: v for k, v in params.items() if not k.startswith(SYSTEM_PREFIX)}
        if self._configs is not None:
            hyper = dict(self._configs[hyper.pop(CONFIG_INDEX)])
        system = None
        if self._system_names:
            system = SystemSetting.of(
                {name: params[SYSTEM_PREFIX + name] for name in self._system_names}
            )
        return Suggestion(number, hyper, system)


def _grid_points(distributions: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    names = list(distributions)
    combos = list(itertools.product(*(distributions[n].choices for n in names)))
    random.Random(seed).shuffle(combos)
    return [dict(zip(names, combo, strict=True)) for combo in combos]


def _distributions(
    hyperparameters: tuple[HyperParameter, ...], system_parameters: tuple[SystemParameter, ...]
) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists: dict[str, Any] = {}
    for hp in hyperparameters:
        if hp.choices is not None:
            dists[hp.name] = CategoricalDistribution(list(hp.choices))
        elif hp.integer:
            assert hp.low is not None and hp.high is not None
            dists[hp.name] = IntDistribution(int(hp.low), int(hp.high), log=hp.log)
        else:
            assert hp.low is not None and hp.high is not None
            dists[hp.name] = FloatDistribution(hp.low, hp.high, log=hp.log)
    for sp in system_parameters:
        dists[SYSTEM_PREFIX + sp.name] = CategoricalDistribution(list(sp.values))
    return dists


def _sampler(name: str, seed: int) -> Any:
    """Optuna's sampler for a `search.sampler` name (a grid is enqueued, then drawn at random)."""
    import optuna  # lazily, like the search itself: `pipetune --help` stays fast

    match Sampler(name):
        case Sampler.TPE:
            return optuna.samplers.TPESampler(seed=seed)
        case Sampler.RANDOM | Sampler.GRID:
            return optuna.samplers.RandomSampler(seed=seed)
        case unknown:
            assert_never(unknown)
