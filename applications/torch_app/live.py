"""What the launcher may change while the job runs: torch's intra-op threads (`cores`).

`torch.set_num_threads(k)` takes effect at the next operator, so a new value holds from the
next iteration. Each rank applies it to itself: `cores` counts the threads of one process, as
BigDL's core number counts those of one node. The launcher moves the processes onto the CPUs
of the new setting before it sends the decision; `in_force()` echoes both, and it checks them.
Inter-op threads stay as torch starts them: torch allows setting them only once, before any
inter-op work, and the bundled models run no inter-op parallel work anyway.
"""

from __future__ import annotations

import os
from typing import Any

import torch

LIVE = ("cores",)


def default_cores(processes_on_host: int) -> int:
    """The threads of one process when the flags name none: the CPUs this process may run
    on, shared evenly by the job's processes on this host."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, processes_on_host))


class LiveThreads:
    def __init__(self, cores: int, processes: int) -> None:
        self.processes = processes
        self.set(cores)

    def set(self, cores: int) -> None:
        if cores != torch.get_num_threads():
            torch.set_num_threads(cores)

    def refusal(self, live: dict[str, Any]) -> str | None:
        """Why these live values cannot be applied here; None when they can."""
        unknown = sorted(set(live) - set(LIVE))
        if unknown:
            return f"no live parameter {unknown[0]!r} in this app (live: {', '.join(LIVE)})"
        cores = live.get("cores", torch.get_num_threads())
        if isinstance(cores, str) and cores.isdigit():
            cores = int(cores)
        if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
            return f"cores {cores!r}: not a thread count >= 1"
        return None

    def apply(self, live: dict[str, Any]) -> None:
        """Apply values `refusal` accepted."""
        if "cores" in live:
            self.set(int(live["cores"]))

    def in_force(self) -> dict[str, Any]:
        return {
            "cores": torch.get_num_threads(),
            "cpus": sorted(os.sched_getaffinity(0)),
            "processes": self.processes,
        }
