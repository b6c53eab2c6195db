"""Runs lenet5_torch.py as a job of several processes through pyspark's TorchDistributor.

    python applications/lenet5_torch/distributor.py --processes N [--master URL] <app flags>

The launcher itself is ../torch_app/distributor.py (README.md: "It runs three ways"); this
script names its app. No torch import: the launcher needs none.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
APP = APP_DIR / "lenet5_torch.py"
sys.path[:0] = [str(APP_DIR), str(APP_DIR.parent)]
from torch_app import distributor  # noqa: E402
from torch_lenet5.workload import LeNet5  # noqa: E402

if __name__ == "__main__":
    sys.exit(distributor.main(APP, LeNet5()))
