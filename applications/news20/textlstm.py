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
import text_flags  # noqa: E402
from bigdl_app import flags, segment  # noqa: E402
from textapp import TextWorkload, text_parser  # noqa: E402


class TextLSTM(TextWorkload):
    name = "textlstm"
    shape_flag = text_flags.HIDDEN_SIZE

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        about = "An LSTM text classifier on BigDL for PipeTune"
        p = text_parser(self.name, about, text_flags.LSTM_LEARNING_RATE)
        text_flags.add_lstm_flags(p)
        return flags.parse_flags(p, argv, text_flags.lstm_problems)

    def body(self, model: Any, args: argparse.Namespace) -> int:
        from bigdl.dllib.nn.layer import LSTM, Recurrent, Select

        model.add(Recurrent().add(LSTM(args.embeddingDim, args.hiddenSize)))
        model.add(Select(2, -1))  # the last time step (the text is padded in front)
        return args.hiddenSize


if __name__ == "__main__":
    sys.exit(segment.main(TextLSTM()))
