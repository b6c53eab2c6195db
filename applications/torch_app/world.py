"""The processes (ranks) that train one model together: one for a plain process, n under
torchrun (TorchDistributor), which sets RANK, WORLD_SIZE and LOCAL_WORLD_SIZE.

Rank 0 leads: it alone talks to the launcher (events, decisions) and writes the checkpoint,
and it hands the others what they must agree on (a decision, a restored state) by broadcast,
so every rank takes the same steps. Gradients are averaged by DistributedDataParallel over
gloo (CPU).
"""

from __future__ import annotations

import datetime
import os
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 1800.0  # torch's own default for a collective


class World:
    """This process's rank among `size`; `local_size` of them share this host."""

    def __init__(self, rank: int = 0, size: int = 1, local_size: int = 1) -> None:
        self.rank = rank
        self.size = size
        self.local_size = local_size

    @classmethod
    def join(cls, wait_s: float) -> World:
        """The world torchrun describes in the environment (a single process without it).
        `wait_s`: the longest any rank waits for rank 0 in one collective (a pause)."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        import torch.distributed as dist

        timeout = datetime.timedelta(seconds=max(DEFAULT_TIMEOUT_S, wait_s + 60))
        dist.init_process_group("gloo", timeout=timeout)
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_WORLD_SIZE"]))

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: T) -> T:
        """Rank 0's `value`, on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value if self.leader else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of `values` over the ranks."""
        if self.size > 1:
            import torch.distributed as dist

            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: DDP averages the gradients of all ranks (and starts every rank
        from rank 0's weights)."""
        if self.size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
