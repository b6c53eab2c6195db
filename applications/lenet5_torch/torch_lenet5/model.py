"""LeNet-5 as the BigDL app builds it (`build_lenet5` in applications/lenet5/lenet5.py)."""

from __future__ import annotations

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
