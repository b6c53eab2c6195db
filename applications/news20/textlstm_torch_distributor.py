"""Runs textlstm_torch.py as a job of several processes through pyspark's TorchDistributor.

    python applications/news20/textlstm_torch_distributor.py --processes N [--master URL] FLAGS

The launcher itself is ../torch_app/distributor.py; this script names its app. No torch
import: the launcher needs none.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
APP = APP_DIR / "textlstm_torch.py"
sys.path[:0] = [str(APP_DIR), str(APP_DIR.parent)]
from textapp_torch import TextLSTM  # noqa: E402
from torch_app import distributor  # noqa: E402

if __name__ == "__main__":
    sys.exit(distributor.main(APP, TextLSTM()))
