"""What a live setting means for a running Spark job, and how it is put in force (the local
tree's placement and the app's live flags are shared with the torch engine).

A setting reaches a running job in two parts: the app's part (its engine core count, or an
app flag it declares live), sent in the decision at a pause, and the operating system's part,
done here before the decision is written: the job's processes are moved to the CPUs of the
new core count. Local mode: the whole process tree (spark-submit's JVM, the Python driver and
its `pyspark.daemon` workers) gets the first N CPUs. Standalone cluster: the executors of the
application on this host (found by app id), each on its own CPUs where several share it, and
through the placement agent of each other host (`placementAgents` in the app config).
"""

from __future__ import annotations

from typing import Any

import psutil

from pipetune.config import AppConfig
from pipetune.engines.bigdl import executor_layout
from pipetune.placement import PlacementError, Placer, executor_cpus, first_cpus
from pipetune.placement_agents import AgentClient
from pipetune.records import SystemSetting
from pipetune.telemetry.estimate import executor_groups


class LiveSettings:
    """The app's live values and the CPUs of a job's processes, for one app config."""

    def __init__(self, app: AppConfig, cpus: tuple[int, ...], placer: Placer | None) -> None:
        self.app = app
        self.spark = app.spark
        self.cpus = cpus
        self.placer = placer if (self.spark.pin_cores and cpus) else None
        # executors on the other hosts of a cluster: placed by the agent each one runs
        # (monitoring/placement_agent.py)
        agents = self.spark.placement_agents
        self.agents = [AgentClient(a) for a in agents] if self.placer else []

    def app_values(self, setting: SystemSetting) -> dict[str, Any]:
        """The live values the app applies itself (contract.Decision.live)."""
        values = live_flag_values(self.app, setting)
        cores = setting.get("cores")
        if cores is not None:
            values["cores"] = self.engine_cores(int(cores))
        return values

    def engine_cores(self, cores: int) -> int:
        """BigDL's core number per node: all of them locally, a share per executor on a
        cluster (`cores` is the application's total there)."""
        if self.spark.is_local:
            return cores
        return executor_layout(cores, self.spark.num_executors)[1]

    def expected_echo(self, setting: SystemSetting) -> dict[str, Any]:
        """What the app must say is in force at `setting` (the driver's CPUs only locally)."""
        cores = setting.get("cores")
        if cores is None:
            return {}
        expected: dict[str, Any] = {"cores": self.engine_cores(int(cores))}
        if self.spark.is_local and self.placer is not None:
            expected["cpus"] = list(first_cpus(self.cpus, int(cores)))
        return expected

    def place(self, job: str, setting: SystemSetting, root_pid: int, app_id: str) -> str:
        """Move the job's processes to the CPUs of `setting`; what was done, for the log."""
        cores = setting.get("cores")
        if self.placer is None or cores is None:
            return "no placement (pinCores off, or no cores parameter)"
        if self.spark.is_local:
            return place_tree(self.placer, job, root_pid, first_cpus(self.cpus, int(cores)))
        per = self.engine_cores(int(cores))
        groups = executor_groups(app_id)
        for i, pids in enumerate(groups):
            self.placer.place(f"{job}-e{i}", pids, executor_cpus(self.cpus, i, per))
        remote = [agent.place(job, app_id, per)["placed"] for agent in self.agents]
        return (
            f"{len(groups)} executor(s) here and {sum(remote)} on {len(self.agents)} other "
            f"host(s), {per} CPU(s) each ({self.placer.name})"
        )

    def release(self, job: str) -> None:
        if self.placer is not None:
            self.placer.release(job)
            for i in range(max(1, self.spark.num_executors)):
                self.placer.release(f"{job}-e{i}")
        for agent in self.agents:
            try:
                agent.release(job)
            except PlacementError:
                continue  # the job has ended anyway; the agent's empty cpusets are stale


def live_flag_values(app: AppConfig, setting: SystemSetting) -> dict[str, Any]:
    """The app flags of `setting` the app takes live (its `liveParameters`), by flag name."""
    return {
        app.system_parameter_flags[name]: value
        for name, value in setting.items
        if name in app.live_parameters
    }


def place_tree(placer: Placer, job: str, root_pid: int, cpus: tuple[int, ...]) -> str:
    """Hold a local job's whole process tree to `cpus`; what was done, for the log."""
    pids = job_tree(root_pid)
    placer.place(job, pids, cpus)
    return f"{len(pids)} process(es) on CPUs {list(cpus)} ({placer.name})"


def job_tree(root_pid: int) -> list[int]:
    """The pids of a local job: the launched process and everything below it."""
    try:
        root = psutil.Process(root_pid)
        return [root_pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []
