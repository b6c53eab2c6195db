"""LeNet-5 on PyTorch for PipeTune: a trial segment per run, or several (README.md).

    python applications/lenet5_torch/lenet5_torch.py --epochs K --checkpoint DIR [flags]

Trains K more epochs of the BigDL app's LeNet-5 on the BigDL app's data, resuming weights and
SGD state from DIR when it holds a checkpoint, then saves DIR atomically; events go to stdout
as `[pipetune] {json}` lines (pipetune/contract.py). The segments run in ../torch_app/
(segment.py), as every torch app's do; torch_lenet5/ holds what is LeNet-5's: its flags,
data and model (workload.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# torch_lenet5 beside this script, torch_app beside its directory
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from torch_app import segment  # noqa: E402
from torch_lenet5.workload import LeNet5  # noqa: E402

if __name__ == "__main__":
    sys.exit(segment.main(LeNet5()))
