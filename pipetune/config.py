"""Load and validate `pipetune.conf` and the app config it names.

Validation runs before anything else and reports every problem at once, each with its JSON path,
what was expected and what was found (`ConfigError`, exit status 2). Each section has its own
module (`config_app`, `config_search`, `config_probing`, `config_telemetry`,
`config_recognition`; an engine's own app fields: `engines/`); this one reads the file, parses
the system parameters and nodes, and assembles the `TuningConfig`. The config layer imports
only `engines`, `errors`, `records` and the probing objective.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config_app import AppConfig, parse_app_reference
from pipetune.config_check import Checker, normalise_memory, show
from pipetune.config_probing import ProbingConfig, parse_probing
from pipetune.config_recognition import RecognitionConfig, parse_recognition
from pipetune.config_search import (
    HyperParameter,
    Sampler,
    SearchConfig,
    parse_hyper,
    parse_search,
)
from pipetune.config_telemetry import PowerConfig, StoreConfig, parse_power, parse_store
from pipetune.engines.base import cores_value
from pipetune.errors import ConfigError, Problem

# The config layer's types, importable from here as well as from the section modules.
__all__ = [
    "AppConfig",
    "ConfigError",
    "HyperParameter",
    "ProbingConfig",
    "Sampler",
    "SearchConfig",
    "normalise_memory",
]

_TOP_KEYS = {
    "bigdlConf",
    "systemParameters",
    "hyperParameters",
    "powerMeter",
    "nodes",
    "search",
    "probing",
    "metrics",
    "runsDir",
    "clustering",
}


@dataclass(frozen=True)
class SystemParameter:
    """Candidate values of one system parameter; the first is the default."""

    name: str
    values: tuple[str, ...]

    @property
    def default(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class TuningConfig:
    """A validated `pipetune.conf`, with relative paths resolved against its directory."""

    source: Path
    base_dir: Path
    app: AppConfig
    system_parameters: tuple[SystemParameter, ...]
    hyperparameters: tuple[HyperParameter, ...]
    search: SearchConfig
    probing: ProbingConfig
    power: PowerConfig
    store: StoreConfig
    nodes: tuple[str, ...]
    runs_dir: Path
    recognition: RecognitionConfig
    raw: dict[str, Any]
    raw_app: dict[str, Any]


def load_config(path: str | Path) -> TuningConfig:
    """Read, validate and resolve a tuning config; raise `ConfigError` listing every problem."""
    source = Path(path)
    raw = _read_json(source, "$")
    return parse_config(raw, source)


def parse_config(raw: Any, source: Path, raw_app: Any = None) -> TuningConfig:
    """Validate an already-decoded config; `raw_app` replaces the app file (run snapshots)."""
    c = Checker(str(source))
    if not isinstance(raw, dict):
        c.problem("$", "a JSON object", show(raw))
        raise c.error()
    base_dir = source.resolve().parent
    c.unknown_keys("$", raw, _TOP_KEYS)

    app, raw_app = parse_app_reference(c, raw, base_dir, raw_app)
    system = _parse_system(c, raw.get("systemParameters", {}), app)
    hyper = parse_hyper(c, raw.get("hyperParameters"))
    search = parse_search(c, raw.get("search", {}), hyper)
    probing = parse_probing(c, raw.get("probing", {}), search.epochs)
    nodes = _parse_nodes(c, raw.get("nodes", ["localhost"]))
    power = parse_power(c, raw.get("powerMeter", "auto"), nodes, base_dir)
    store = parse_store(c, raw.get("metrics", {}), base_dir)
    runs_dir = base_dir / c.string("$.runsDir", raw.get("runsDir", "runs"))
    raw_hyper = raw.get("hyperParameters")
    names = set(raw_hyper) if isinstance(raw_hyper, dict) else set()
    recognition = parse_recognition(c, raw.get("clustering", {}), base_dir, names)
    if app is not None:
        for hp in hyper:
            if hp.name not in app.hyperparameter_flags:
                c.problem(
                    f"{app.path.name}: $.hyperParameterFlags",
                    f'an app flag for hyperparameter "{hp.name}"',
                    "no mapping (the app would never receive it)",
                )
    if c.problems or app is None:  # an app that did not parse left its problems
        raise c.error()
    return TuningConfig(
        source=source,
        base_dir=base_dir,
        app=app,
        system_parameters=system,
        hyperparameters=hyper,
        search=search,
        probing=probing,
        power=power,
        store=store,
        nodes=nodes,
        runs_dir=runs_dir,
        recognition=recognition,
        raw=raw,
        raw_app=raw_app,
    )


def check_mode(config: TuningConfig, mode: str) -> None:
    """Problems that depend on the mode chosen on the command line."""
    if mode == "pipetune" and config.search.epochs < 2:
        raise ConfigError(
            [
                Problem(
                    "$.search.epochs",
                    "≥ 2 in pipetune mode (probe epochs + one to train)",
                    str(config.search.epochs),
                )
            ],
            str(config.source),
        )


# --------------------------------------------------------------------------- sections


def _parse_system(c: Checker, raw: Any, app: AppConfig | None) -> tuple[SystemParameter, ...]:
    if not isinstance(raw, dict):
        c.problem("$.systemParameters", "an object of lists (first value = default)", show(raw))
        return ()
    params = []
    for name, values in raw.items():
        p = f"$.systemParameters.{name}"
        if not isinstance(values, list) or not values:
            c.problem(p, "a non-empty list of values (the first is the default)", show(values))
            continue
        if app is not None:
            engine = app.settings
            if name not in engine.system_parameters and name not in app.system_parameter_flags:
                c.problem(
                    p,
                    f"a parameter of the {engine.engine} engine {list(engine.system_parameters)} "
                    "or one mapped in the app's systemParameterFlags",
                    f'"{name}"',
                )
                continue
        clean: list[str] = []
        for i, v in enumerate(values):
            item = _system_value(c, f"{p}[{i}]", name, v, app)
            if item is not None:
                if item in clean:
                    c.problem(f"{p}[{i}]", "distinct values", f"{show(v)} repeated")
                clean.append(item)
        if len(clean) == len(values):
            params.append(SystemParameter(name, tuple(clean)))
    return tuple(params)


def _system_value(c: Checker, p: str, name: str, v: Any, app: AppConfig | None) -> str | None:
    """A value checked by the engine that takes the parameter; an app flag's as written."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        c.problem(p, "a string or a number", show(v))
        return None
    if app is not None and name in app.settings.system_parameters:
        return app.settings.system_value(c, p, name, v)
    if app is None and name == "cores":  # an app that did not parse: what every engine needs
        return None if cores_value(c, p, v) is None else str(v).strip()
    return str(v).strip()


def _parse_nodes(c: Checker, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) and n for n in raw):
        c.problem("$.nodes", "a non-empty list of host names", show(raw))
        return ("localhost",)
    return tuple(raw)


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path, where: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            [Problem(where, "a readable config file", f"{path}: {exc.strerror}")]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        found = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ConfigError([Problem(where, "valid JSON", found)], str(path)) from None
