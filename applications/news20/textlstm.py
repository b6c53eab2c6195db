"""An LSTM text classifier on BigDL for PipeTune, in the style of the original News20 app.

    spark-submit [spark options] applications/news20/textlstm.py \
        --epochs K --checkpoint DIR [--batchSize B --hiddenSize H --embeddingDim E ...]

Embedded words -> LSTM(E -> H) over the sequence -> its last step -> the News20 head
(README.md). Trains K more epochs from DIR's checkpoint and saves it, as LeNet-5 does (the
segments run in ../bigdl_app/); the data is textapp.py's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from bigdl_app import flags, segment  # noqa: E402
from textapp import TextWorkload, text_parser, text_problems  # noqa: E402


class TextLSTM(TextWorkload):
    name = "textlstm"
    shape_flag = "hiddenSize"

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        # an LSTM's gradients are smaller: 0.05 learns in 3x the epochs (README)
        p = text_parser(self.name, "An LSTM text classifier on BigDL for PipeTune", 0.2)
        p.add_argument("--hiddenSize", type=int, default=64, help="LSTM units")
        return flags.parse_flags(p, argv, _problems)

    def body(self, model: Any, args: argparse.Namespace) -> int:
        from bigdl.dllib.nn.layer import LSTM, Recurrent, Select

        model.add(Recurrent().add(LSTM(args.embeddingDim, args.hiddenSize)))
        model.add(Select(2, -1))  # the last time step (the text is padded in front)
        return args.hiddenSize


def _problems(args: argparse.Namespace) -> list[str]:
    problems = text_problems(args)
    if args.hiddenSize < 1:
        problems.append("--hiddenSize must be >= 1")
    return problems


if __name__ == "__main__":
    sys.exit(segment.main(TextLSTM()))
