"""LeNet-5 as the BigDL app builds it (`build_lenet5` in applications/lenet5/lenet5.py), and
fingerprints of a model's weights and of an optimizer's momentum."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn

NUM_CLASSES = 10


def build_lenet5(class_num: int = NUM_CLASSES) -> nn.Sequential:
    """conv 1→6 5×5, tanh, max-pool 2 → conv 6→12 5×5, tanh, max-pool 2 → linear 192→100,
    tanh → linear 100→classes → log-softmax: 22,278 parameters, as on BigDL."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.Tanh(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 12, 5),
        nn.Tanh(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(12 * 4 * 4, 100),
        nn.Tanh(),
        nn.Linear(100, class_num),
        nn.LogSoftmax(dim=1),
    )


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
