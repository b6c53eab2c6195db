"""The `hyperParameters` and `search` sections of pipetune.conf: what the search explores, and
how (search.py runs it). Imports only `config_check` and `errors`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from pipetune.config_check import Checker, is_number, show


class Sampler(enum.StrEnum):
    """How the search picks hyperparameters (Optuna's samplers, seeded)."""

    RANDOM = "random"
    GRID = "grid"  # every combination of the value lists, in a seeded order
    TPE = "tpe"


@dataclass(frozen=True)
class HyperParameter:
    """A categorical list (`choices`) or a numeric range (`low`..`high`, optionally log/int)."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_categorical(self) -> bool:
        return self.choices is not None


@dataclass(frozen=True)
class SearchConfig:
    sampler: Sampler = Sampler.RANDOM
    trials: int = 2
    epochs: int = 4
    seed: int = 0


def parse_hyper(c: Checker, raw: Any) -> tuple[HyperParameter, ...]:
    if not isinstance(raw, dict) or not raw:
        c.problem("$.hyperParameters", "a non-empty object of lists or ranges", show(raw))
        return ()
    params = []
    for name, spec in raw.items():
        p = f"$.hyperParameters.{name}"
        if isinstance(spec, list):
            bad = [i for i, v in enumerate(spec) if isinstance(v, (dict, list)) or v is None]
            if not spec:
                c.problem(p, "a non-empty list of values", "[]")
            elif bad:
                c.problem(f"{p}[{bad[0]}]", "a number, string or boolean", show(spec[bad[0]]))
            elif len(set(map(json.dumps, spec))) != len(spec):
                c.problem(p, "distinct values", show(spec))
            else:
                params.append(HyperParameter(name, choices=tuple(spec)))
        elif isinstance(spec, dict):
            hp = _parse_range(c, p, name, spec)
            if hp is not None:
                params.append(hp)
        else:
            c.problem(
                p, 'a list of values or a range {"low": .., "high": .., "log": true}', show(spec)
            )
    return tuple(params)


def _parse_range(c: Checker, p: str, name: str, spec: dict[str, Any]) -> HyperParameter | None:
    c.unknown_keys(p, spec, {"low", "high", "log", "int"})
    low, high = spec.get("low"), spec.get("high")
    log, integer = spec.get("log", False), spec.get("int", False)
    ok = True
    for key, value in (("low", low), ("high", high)):
        if not is_number(value):
            c.problem(f"{p}.{key}", "a number", show(value))
            ok = False
    for key, value in (("log", log), ("int", integer)):
        if not isinstance(value, bool):
            c.problem(f"{p}.{key}", "true or false", show(value))
            ok = False
    if not ok or low is None or high is None:
        return None
    if low >= high:
        c.problem(p, "low < high", f"low={low}, high={high}")
        return None
    if log and low <= 0:
        c.problem(f"{p}.low", "a positive number (log scale)", show(low))
        return None
    return HyperParameter(name, low=float(low), high=float(high), log=log, integer=integer)


def parse_search(c: Checker, raw: Any, hyper: tuple[HyperParameter, ...]) -> SearchConfig:
    if not isinstance(raw, dict):
        c.problem("$.search", "an object", show(raw))
        return SearchConfig()
    c.unknown_keys("$.search", raw, {"sampler", "trials", "epochs", "seed"})
    d = SearchConfig()
    sampler = c.choice("$.search.sampler", raw.get("sampler", d.sampler), Sampler)
    if sampler is Sampler.GRID:
        for hp in hyper:
            if not hp.is_categorical:
                c.problem(
                    f"$.hyperParameters.{hp.name}", "a list of values (grid sampler)", "a range"
                )
    return SearchConfig(
        sampler=sampler,
        trials=c.positive_int("$.search.trials", raw.get("trials", d.trials)),
        epochs=c.positive_int("$.search.epochs", raw.get("epochs", d.epochs)),
        seed=c.integer("$.search.seed", raw.get("seed", d.seed)),
    )
