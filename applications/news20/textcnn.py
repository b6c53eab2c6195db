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
from bigdl_app import flags, segment  # noqa: E402
from textapp import TextWorkload, text_parser, text_problems  # noqa: E402

KERNEL_WIDTH = 5  # words per filter, as in the original


class TextCNN(TextWorkload):
    name = "textcnn"
    shape_flag = "filters"

    def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
        about = "A text CNN on BigDL for PipeTune (resumable trial segment)"
        p = text_parser(self.name, about, learning_rate=0.05)
        p.add_argument("--filters", type=int, default=64, help="convolution filters")
        return flags.parse_flags(p, argv, _problems)

    def body(self, model: Any, args: argparse.Namespace) -> int:
        from bigdl.dllib.nn.layer import ReLU, Squeeze, TemporalConvolution, TemporalMaxPooling

        model.add(TemporalConvolution(args.embeddingDim, args.filters, KERNEL_WIDTH))
        model.add(ReLU())
        model.add(TemporalMaxPooling(args.sequenceLength - KERNEL_WIDTH + 1))  # max over time
        model.add(Squeeze(2))
        return args.filters


def _problems(args: argparse.Namespace) -> list[str]:
    problems = text_problems(args)
    if args.filters < 1:
        problems.append("--filters must be >= 1")
    if args.sequenceLength < KERNEL_WIDTH:
        problems.append(f"--sequenceLength must be >= {KERNEL_WIDTH} (the filters' width)")
    return problems


if __name__ == "__main__":
    sys.exit(segment.main(TextCNN()))
