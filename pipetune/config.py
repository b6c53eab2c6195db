"""Load and validate `pipetune.conf` and the BigDL app config it names.

Validation runs before anything else and reports every problem at once, each with its JSON path,
what was expected and what was found (`ConfigError`, exit status 2). Imports only `errors`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, is_number, normalise_memory, show
from pipetune.config_probing import (
    OBJECTIVE_METRICS,
    Objective,
    ProbingConfig,
    parse_probing,
)
from pipetune.config_recognition import RecognitionConfig, parse_recognition
from pipetune.config_telemetry import PowerConfig, StoreConfig, parse_power, parse_store
from pipetune.errors import ConfigError, Problem
from pipetune.records import ApplyMode

__all__ = ["OBJECTIVE_METRICS", "ApplyMode", "Objective", "ProbingConfig"]

SAMPLERS = ("random", "grid", "tpe")
SPARK_SYSTEM_PARAMETERS = ("cores", "memory")

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
_APP_KEYS = {
    "name",
    "master",
    "driver_memory",
    "executor_memory",
    "num_executors",
    "conf",
    "extras",
    "hyperParameterFlags",
    "systemParameterFlags",
    "sparkConf",
    "timeout_s",
    "pinCores",
    "classDataSharing",
    "reuseProcess",
    "liveParameters",
    "placementAgents",
}
_LOCAL_MASTER = re.compile(r"^local(\[(\d+|\*)\])?$")
_SPARK_MASTER = re.compile(r"^spark://[^:/\s]+:\d+$")
_AGENT = re.compile(r"^[^:/\s]+:\d{1,5}$")


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
class SystemParameter:
    """Candidate values of one system parameter; the first is the default."""

    name: str
    values: tuple[str, ...]

    @property
    def default(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class AppConfig:
    """A BigDL application and how to launch it (`bigdl/config/*.json`)."""

    path: Path
    name: str
    master: str
    script: Path
    driver_memory: str
    executor_memory: str
    num_executors: int
    extras: dict[str, Any]
    hyperparameter_flags: dict[str, str]
    system_parameter_flags: dict[str, str]
    spark_conf: dict[str, str]
    timeout_s: float
    # local[N]: hold the job to N CPUs, as a cluster manager's cgroups hold an executor to its
    # cores; BigDL's native (MKL) threads otherwise use every CPU whatever N says.
    pin_cores: bool = True
    # app flags (systemParameterFlags names) the app applies in a running job (contract.py)
    live_parameters: tuple[str, ...] = ()
    # host:port of the placement agent on each other host of a cluster (live cores there)
    placement_agents: tuple[str, ...] = ()
    # start the driver JVM from a class-data-sharing archive of its class path
    # (backends/cds.py): ~1.6 s less start-up a segment here
    class_data_sharing: bool = True
    # run a segment in the process of the one before when both are launched alike (their
    # Spark options and system-parameter flags): the Spark context and the data are kept,
    # the rest is the segment's own (backends/job.py; the app must support it: contract.py)
    reuse_process: bool = True

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    def apply_mode(self, name: str) -> ApplyMode:
        """How a new value of system parameter `name` reaches a running trial: `cores` live
        (BigDL re-reads its core number at every optimize(); the processes are re-pinned),
        memory at a restart (a JVM's heap is fixed at its start), app flags at a restart
        unless the app declares them live."""
        if name == "cores" or name in self.live_parameters:
            return ApplyMode.LIVE
        return ApplyMode.RESTART


@dataclass(frozen=True)
class SearchConfig:
    sampler: str = "random"
    trials: int = 2
    epochs: int = 4
    seed: int = 0


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

    app, raw_app = _parse_app_reference(c, raw, base_dir, raw_app)
    system = _parse_system(c, raw.get("systemParameters", {}), app)
    hyper = _parse_hyper(c, raw.get("hyperParameters"))
    search = _parse_search(c, raw.get("search", {}), hyper)
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
    if c.problems:
        raise c.error()
    assert app is not None  # no problems means the app parsed
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


def executor_layout(cores: int, num_executors: int) -> tuple[int, int]:
    """(executors, cores per executor) for `cores` total cores on a standalone cluster."""
    executors = max(1, min(num_executors, cores))
    return executors, cores // executors


# --------------------------------------------------------------------------- sections


def _parse_app_reference(
    c: Checker, raw: dict[str, Any], base_dir: Path, snapshot: Any
) -> tuple[AppConfig | None, dict[str, Any]]:
    ref = raw.get("bigdlConf")
    if not isinstance(ref, str) or not ref:
        c.problem("$.bigdlConf", "the path of a BigDL app config (a string)", show(ref))
        return None, {}
    app_path = (base_dir / ref).resolve()
    if snapshot is not None:
        return _parse_app(c, snapshot, app_path, base_dir), snapshot
    if not app_path.is_file():
        c.problem("$.bigdlConf", "an existing file", f'"{ref}" (no such file: {app_path})')
        return None, {}
    try:
        raw_app = json.loads(app_path.read_text())
    except json.JSONDecodeError as exc:
        c.problem(f"{app_path.name}: $", "valid JSON", f"{exc.msg} at line {exc.lineno}")
        return None, {}
    return _parse_app(c, raw_app, app_path, base_dir), raw_app


def _parse_app(c: Checker, raw: Any, path: Path, base_dir: Path) -> AppConfig | None:
    p = f"{path.name}: $"
    if not isinstance(raw, dict):
        c.problem(p, "a JSON object", show(raw))
        return None
    c.unknown_keys(p, raw, _APP_KEYS)
    before = len(c.problems)
    master = c.string(f"{p}.master", raw.get("master", "local[2]"))
    if master and not (_LOCAL_MASTER.match(master) or _SPARK_MASTER.match(master)):
        c.problem(f"{p}.master", 'a Spark master "local[N]" or "spark://host:port"', show(master))
    script_name = c.string(f"{p}.conf", raw.get("conf"))
    script = (base_dir / script_name).resolve() if script_name else base_dir
    if script_name and not script.is_file():
        c.problem(f"{p}.conf", "the path of the app script", f'"{script_name}" (no such file)')
    driver_memory = c.memory(f"{p}.driver_memory", raw.get("driver_memory", "2g"))
    executor_memory = c.memory(f"{p}.executor_memory", raw.get("executor_memory", "2g"))
    num_executors = c.positive_int(f"{p}.num_executors", raw.get("num_executors", 1))
    extras = c.mapping(f"{p}.extras", raw.get("extras", {}))
    hp_flags = c.flag_map(f"{p}.hyperParameterFlags", raw.get("hyperParameterFlags", {}))
    sp_flags = c.flag_map(f"{p}.systemParameterFlags", raw.get("systemParameterFlags", {}))
    spark_conf = {
        str(k): str(v) for k, v in c.mapping(f"{p}.sparkConf", raw.get("sparkConf", {})).items()
    }
    timeout = raw.get("timeout_s", 1800)
    if not is_number(timeout) or timeout <= 0:
        c.problem(f"{p}.timeout_s", "a positive number of seconds", show(timeout))
    pin_cores = raw.get("pinCores", True)
    if not isinstance(pin_cores, bool):
        c.problem(f"{p}.pinCores", "true or false", show(pin_cores))
    sharing = raw.get("classDataSharing", True)
    if not isinstance(sharing, bool):
        c.problem(f"{p}.classDataSharing", "true or false", show(sharing))
    reuse = raw.get("reuseProcess", True)
    if not isinstance(reuse, bool):
        c.problem(f"{p}.reuseProcess", "true or false", show(reuse))
    live = raw.get("liveParameters", [])
    if not isinstance(live, list) or not all(isinstance(n, str) and n in sp_flags for n in live):
        c.problem(
            f"{p}.liveParameters",
            "a list of names mapped in systemParameterFlags that the app applies live",
            show(live),
        )
        live = []
    agents = raw.get("placementAgents", [])
    if not isinstance(agents, list) or not all(
        isinstance(a, str) and _AGENT.match(a) for a in agents
    ):
        c.problem(f"{p}.placementAgents", 'a list of "host:port" addresses', show(agents))
        agents = []
    if len(c.problems) > before:
        return None
    return AppConfig(
        path=path,
        name=str(raw.get("name") or path.stem),
        master=master,
        script=script,
        driver_memory=driver_memory,
        executor_memory=executor_memory,
        num_executors=num_executors,
        extras=extras,
        hyperparameter_flags=hp_flags,
        system_parameter_flags=sp_flags,
        spark_conf=spark_conf,
        timeout_s=float(timeout),
        pin_cores=pin_cores,
        class_data_sharing=sharing,
        reuse_process=reuse,
        live_parameters=tuple(live),
        placement_agents=tuple(agents),
    )


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
        if (
            app is not None
            and name not in SPARK_SYSTEM_PARAMETERS
            and name not in app.system_parameter_flags
        ):
            c.problem(
                p,
                f"a Spark parameter {list(SPARK_SYSTEM_PARAMETERS)} or one mapped in the app's "
                "systemParameterFlags",
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
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        c.problem(p, "a string or a number", show(v))
        return None
    text = str(v).strip()
    if name == "cores":
        if not text.isdigit() or int(text) < 1:
            c.problem(p, "a whole number of cores ≥ 1", show(v))
            return None
        if app is not None and not app.is_local:
            executors, per = executor_layout(int(text), app.num_executors)
            if executors * per != int(text):
                c.problem(
                    p,
                    f"a core count divisible among {executors} executors (num_executors)",
                    show(v),
                )
                return None
        return text
    if name == "memory":
        try:
            return normalise_memory(text)
        except ValueError:
            c.problem(p, 'a memory size such as "2g", "512m" or a number of GB', show(v))
            return None
    return text


def _parse_hyper(c: Checker, raw: Any) -> tuple[HyperParameter, ...]:
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


def _parse_search(c: Checker, raw: Any, hyper: tuple[HyperParameter, ...]) -> SearchConfig:
    if not isinstance(raw, dict):
        c.problem("$.search", "an object", show(raw))
        return SearchConfig()
    c.unknown_keys("$.search", raw, {"sampler", "trials", "epochs", "seed"})
    d = SearchConfig()
    sampler = c.choice("$.search.sampler", raw.get("sampler", d.sampler), SAMPLERS)
    if sampler == "grid":
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
