"""Fingerprints of a model's weights and of an optimizer's momentum: a `start` event says
where a segment starts from with them, and a checkpoint's meta.json which momentum it holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn


def digest(tensors: Iterable[torch.Tensor]) -> str:
    """A short fingerprint of these tensors' float32 values, in order."""
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


def weights_digest(model: nn.Module) -> str:
    """Where a segment starts from (its `start` event says it)."""
    return digest(model.state_dict().values())


def momentum_digest(optimizer: torch.optim.Optimizer) -> str | None:
    """The SGD momentum buffers' fingerprint; None before the first step (no buffer yet)."""
    buffers = [
        optimizer.state[p].get("momentum_buffer")
        for group in optimizer.param_groups
        for p in group["params"]
    ]
    if not buffers or any(b is None for b in buffers):
        return None
    return digest(b for b in buffers if b is not None)
