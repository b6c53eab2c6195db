"""A text CNN on PyTorch for PipeTune: the BigDL text CNN (textcnn.py) with its flags and
data, trained in torch (README.md).

    python applications/news20/textcnn_torch.py --epochs K --checkpoint DIR [flags]

Embedded words -> Conv1d(E -> F, width 5) -> ReLU -> max over time -> the News20 head. The
segments run in ../torch_app/ as lenet5_torch's do; the workload is textapp_torch.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from textapp_torch import TextCNN  # noqa: E402
from torch_app import segment  # noqa: E402

if __name__ == "__main__":
    sys.exit(segment.main(TextCNN()))
