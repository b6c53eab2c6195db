"""The BigDL app config that `pipetune.conf` names in `bigdlConf` (`bigdl/config/*.json`).

Its problems are reported with the app file's name before the JSON path
(`app.json: $.master`). Imports only `config_check`, `errors` and `records`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, is_number, show
from pipetune.records import ApplyMode

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


def parse_app_reference(
    c: Checker, raw: dict[str, Any], base_dir: Path, snapshot: Any
) -> tuple[AppConfig | None, dict[str, Any]]:
    """The app config `$.bigdlConf` names, and its raw JSON; `snapshot` replaces the file."""
    ref = raw.get("bigdlConf")
    if not isinstance(ref, str) or not ref:
        c.problem("$.bigdlConf", "the path of a BigDL app config (a string)", show(ref))
        return None, {}
    app_path = (base_dir / ref).resolve()
    if snapshot is not None:
        return parse_app(c, snapshot, app_path, base_dir), snapshot
    if not app_path.is_file():
        c.problem("$.bigdlConf", "an existing file", f'"{ref}" (no such file: {app_path})')
        return None, {}
    try:
        raw_app = json.loads(app_path.read_text())
    except json.JSONDecodeError as exc:
        c.problem(f"{app_path.name}: $", "valid JSON", f"{exc.msg} at line {exc.lineno}")
        return None, {}
    return parse_app(c, raw_app, app_path, base_dir), raw_app


def parse_app(c: Checker, raw: Any, path: Path, base_dir: Path) -> AppConfig | None:
    """The app config at `path` (already decoded), or None after recording its problems."""
    p = f"{path.name}: $"
    if not isinstance(raw, dict):
        c.problem(p, "a JSON object", show(raw))
        return None
    c.unknown_keys(p, raw, _APP_KEYS)
    before = len(c.problems)
    master, script = _master(c, p, raw), _script(c, p, raw, base_dir)
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
    pin_cores = c.boolean(f"{p}.pinCores", raw.get("pinCores", True), True)
    sharing = c.boolean(f"{p}.classDataSharing", raw.get("classDataSharing", True), True)
    reuse = c.boolean(f"{p}.reuseProcess", raw.get("reuseProcess", True), True)
    live = _live_parameters(c, p, raw.get("liveParameters", []), sp_flags)
    agents = _placement_agents(c, p, raw.get("placementAgents", []))
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
        live_parameters=live,
        placement_agents=agents,
    )


def _master(c: Checker, p: str, raw: dict[str, Any]) -> str:
    master = c.string(f"{p}.master", raw.get("master", "local[2]"))
    if master and not (_LOCAL_MASTER.match(master) or _SPARK_MASTER.match(master)):
        c.problem(f"{p}.master", 'a Spark master "local[N]" or "spark://host:port"', show(master))
    return master


def _script(c: Checker, p: str, raw: dict[str, Any], base_dir: Path) -> Path:
    script_name = c.string(f"{p}.conf", raw.get("conf"))
    script = (base_dir / script_name).resolve() if script_name else base_dir
    if script_name and not script.is_file():
        c.problem(f"{p}.conf", "the path of the app script", f'"{script_name}" (no such file)')
    return script


def _live_parameters(c: Checker, p: str, live: Any, sp_flags: dict[str, str]) -> tuple[str, ...]:
    if not isinstance(live, list) or not all(isinstance(n, str) and n in sp_flags for n in live):
        c.problem(
            f"{p}.liveParameters",
            "a list of names mapped in systemParameterFlags that the app applies live",
            show(live),
        )
        return ()
    return tuple(live)


def _placement_agents(c: Checker, p: str, agents: Any) -> tuple[str, ...]:
    if not isinstance(agents, list) or not all(
        isinstance(a, str) and _AGENT.match(a) for a in agents
    ):
        c.problem(f"{p}.placementAgents", 'a list of "host:port" addresses', show(agents))
        return ()
    return tuple(agents)
