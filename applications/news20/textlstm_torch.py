"""An LSTM text classifier on PyTorch for PipeTune: the BigDL one (textlstm.py) with its flags
and data, trained in torch (README.md).

    python applications/news20/textlstm_torch.py --epochs K --checkpoint DIR [flags]

Embedded words -> LSTM(E -> H), its last step -> the News20 head. The segments run in
../torch_app/ as lenet5_torch's do; the workload is textapp_torch.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from textapp_torch import TextLSTM  # noqa: E402
from torch_app import segment  # noqa: E402

if __name__ == "__main__":
    sys.exit(segment.main(TextLSTM()))
