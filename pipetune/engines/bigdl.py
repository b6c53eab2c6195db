"""The BigDL engine's part of an app config: how spark-submit launches the app.

`master` is `local[N]` or `spark://host:port`; `cores` and `memory` are the engine's system
parameters (backends/spark.py says what they become on the command line). Problems carry the
app file's name before the JSON path (`app.json: $.master`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, normalise_memory, show
from pipetune.engines.base import Engine, EngineSettings, EngineSpec, cores_value, spark_master

_AGENT = re.compile(r"^[^:/\s]+:\d{1,5}$")


def executor_layout(cores: int, num_executors: int) -> tuple[int, int]:
    """(executors, cores per executor) for `cores` total cores on a standalone cluster."""
    executors = max(1, min(num_executors, cores))
    return executors, cores // executors


@dataclass(frozen=True)
class SparkSettings(EngineSettings):
    """How spark-submit runs a BigDL app."""

    engine = Engine.BIGDL
    backend = "spark-submit"
    system_parameters = ("cores", "memory")

    master: str = "local[2]"
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    num_executors: int = 1
    spark_conf: dict[str, str] = field(default_factory=dict)  # `--conf key=value` each
    # local[N]: hold the job to N CPUs, as a cluster manager's cgroups hold an executor to its
    # cores; BigDL's native (MKL) threads otherwise use every CPU whatever N says.
    pin_cores: bool = True
    # start the driver JVM from a class-data-sharing archive of its class path
    # (backends/cds.py): ~1.6 s less start-up a segment here
    class_data_sharing: bool = True
    # host:port of the placement agent on each other host of a cluster (live cores there)
    placement_agents: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    def system_value(self, c: Checker, path: str, name: str, value: Any) -> str | None:
        if name == "memory":
            try:
                return normalise_memory(str(value).strip())
            except ValueError:
                c.problem(path, 'a memory size such as "2g", "512m" or a number of GB', show(value))
                return None
        cores = cores_value(c, path, value)
        if cores is None or self.is_local:
            return None if cores is None else str(cores)
        executors, per = executor_layout(cores, self.num_executors)
        if executors * per != cores:
            c.problem(
                path,
                f"a core count divisible among {executors} executors (num_executors)",
                show(value),
            )
            return None
        return str(cores)

    def describe(self) -> str:
        return f"spark-submit on {self.master}"


def parse(c: Checker, p: str, raw: dict[str, Any], base_dir: Path) -> SparkSettings | None:
    """The BigDL fields of the app config whose path prefix is `p`."""
    before = len(c.problems)
    master = spark_master(c, f"{p}.master", raw.get("master", "local[2]"))
    driver_memory = c.memory(f"{p}.driver_memory", raw.get("driver_memory", "2g"))
    executor_memory = c.memory(f"{p}.executor_memory", raw.get("executor_memory", "2g"))
    num_executors = c.positive_int(f"{p}.num_executors", raw.get("num_executors", 1))
    spark_conf = {
        str(k): str(v) for k, v in c.mapping(f"{p}.sparkConf", raw.get("sparkConf", {})).items()
    }
    pin_cores = c.boolean(f"{p}.pinCores", raw.get("pinCores", True), True)
    sharing = c.boolean(f"{p}.classDataSharing", raw.get("classDataSharing", True), True)
    agents = _placement_agents(c, p, raw.get("placementAgents", []))
    if len(c.problems) > before:
        return None
    return SparkSettings(
        master=master,
        driver_memory=driver_memory,
        executor_memory=executor_memory,
        num_executors=num_executors,
        spark_conf=spark_conf,
        pin_cores=pin_cores,
        class_data_sharing=sharing,
        placement_agents=agents,
    )


def _placement_agents(c: Checker, p: str, agents: Any) -> tuple[str, ...]:
    if not isinstance(agents, list) or not all(
        isinstance(a, str) and _AGENT.match(a) for a in agents
    ):
        c.problem(f"{p}.placementAgents", 'a list of "host:port" addresses', show(agents))
        return ()
    return tuple(agents)


SPEC = EngineSpec(
    keys=frozenset(
        {
            "master",
            "driver_memory",
            "executor_memory",
            "num_executors",
            "sparkConf",
            "pinCores",
            "classDataSharing",
            "placementAgents",
        }
    ),
    parse=parse,
)
