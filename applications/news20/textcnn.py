"""A text CNN on BigDL for PipeTune, in the style of the original News20 app (README.md).

    spark-submit [spark options] applications/news20/textcnn.py \
        --epochs K --checkpoint DIR [--batchSize B --filters F --embeddingDim E ...]

Embedded words -> TemporalConvolution(E -> F, width 5) -> ReLU -> max over time -> the
News20 head. Trains K more epochs from DIR's checkpoint and saves it, as LeNet-5 does (the
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
from text_flags import KERNEL_WIDTH  # noqa: E402
from textapp import TextWorkload, text_parser  # noqa: E402


class TextCNN(TextWorkload):
    name = "textcnn"
    shape_flag = text_flags.FILTERS

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        about = "A text CNN on BigDL for PipeTune (resumable trial segment)"
        p = text_parser(self.name, about, learning_rate=text_flags.CNN_LEARNING_RATE)
        text_flags.add_cnn_flags(p)
        return flags.parse_flags(p, argv, text_flags.cnn_problems)

    def body(self, model: Any, args: argparse.Namespace) -> int:
        from bigdl.dllib.nn.layer import ReLU, Squeeze, TemporalConvolution, TemporalMaxPooling

        model.add(TemporalConvolution(args.embeddingDim, args.filters, KERNEL_WIDTH))
        model.add(ReLU())
        model.add(TemporalMaxPooling(args.sequenceLength - KERNEL_WIDTH + 1))  # max over time
        model.add(Squeeze(2))
        return args.filters


if __name__ == "__main__":
    sys.exit(segment.main(TextCNN()))
