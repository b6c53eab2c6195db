"""The torch engine's part of an app config: a PyTorch app as a plain Python process, or as
`processes` training processes through a TorchDistributor launcher (backends/torch_backend.py).

`cores` is its one system parameter: the job's CPUs on this host, shared evenly by its
processes (each one's torch threads), live through `torch.set_num_threads` and the re-pinning
of the job's processes. There is no `memory`: a Python process has no heap size to set (a
JVM's is what BigDL's `memory` sets), so tuning one for a torch app is a config error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune.config_check import Checker, show
from pipetune.engines.base import Engine, EngineSettings, EngineSpec, cores_value, spark_master


@dataclass(frozen=True)
class TorchSettings(EngineSettings):
    """How a PyTorch app is launched."""

    engine = Engine.TORCH
    backend = "torch"
    system_parameters = ("cores",)

    # the TorchDistributor launcher (`LAUNCHER --processes N --master M APP_FLAGS...`), which
    # starts its app (`conf`) in each process; unused for one plain process
    launcher: Path | None = None
    processes: int = 1  # training processes (ranks), over gloo
    # the launcher's Spark master: local[N] runs the processes on this host (torchrun),
    # spark://host:port on the cluster's executors
    master: str = "local[1]"
    # hold a local job to the CPUs of its `cores` (torch's threads otherwise use every CPU)
    pin_cores: bool = True

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    @property
    def plain(self) -> bool:
        """One process on this host: the app itself, without the launcher."""
        return self.processes == 1 and self.is_local

    def threads(self, cores: int) -> int:
        """Torch threads per process when the job has `cores` CPUs."""
        return max(1, cores // self.processes)

    def system_value(self, c: Checker, path: str, name: str, value: Any) -> str | None:
        cores = cores_value(c, path, value)
        if cores is not None and cores % self.processes:
            c.problem(path, f"a core count divisible among {self.processes} processes", show(value))
            return None
        return None if cores is None else str(cores)

    def describe(self) -> str:
        if self.plain:
            return "one Python process"
        where = "on this host" if self.is_local else "on the cluster's executors"
        return f"{self.processes} processes through TorchDistributor {where} ({self.master})"


def parse(c: Checker, p: str, raw: dict[str, Any], base_dir: Path) -> TorchSettings | None:
    """The torch fields of the app config whose path prefix is `p`."""
    before = len(c.problems)
    processes = c.positive_int(f"{p}.processes", raw.get("processes", 1))
    master = spark_master(c, f"{p}.master", raw.get("master", "local[1]"))
    pin_cores = c.boolean(f"{p}.pinCores", raw.get("pinCores", True), True)
    launcher = _launcher(c, p, raw.get("launcher"), base_dir)
    needs_launcher = processes > 1 or not master.startswith("local")
    if needs_launcher and raw.get("launcher") is None:
        c.problem(
            f"{p}.launcher",
            "the path of the TorchDistributor launcher (for processes > 1 or a cluster master)",
            "nothing",
        )
    if len(c.problems) > before:
        return None
    return TorchSettings(launcher=launcher, processes=processes, master=master, pin_cores=pin_cores)


def _launcher(c: Checker, p: str, value: Any, base_dir: Path) -> Path | None:
    if value is None:
        return None
    name = c.string(f"{p}.launcher", value)
    launcher = (base_dir / name).resolve()
    if name and not launcher.is_file():
        c.problem(f"{p}.launcher", "the path of the launcher script", f'"{name}" (no such file)')
    return launcher if name else None


SPEC = EngineSpec(keys=frozenset({"launcher", "processes", "master", "pinCores"}), parse=parse)
