"""The text apps on PyTorch (textcnn_torch.py, textlstm_torch.py): the BigDL text apps'
flags, data and models as `Workload`s of the shared torch machinery (../torch_app/).

The flags and their checks are text_flags.py's and the data is text_prep.py's, as on BigDL,
so the same flags (seed included) give the same documents, vocabulary, split and embeddings
on both engines. Each rank holds what BigDL's partition of the same number holds (contiguous
parts, text_data.chunks), each document as its (sequence, width) embedded word vectors, as
BigDL's samples are. No torch import here: the launcher reads the flags through these.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import numpy as np
import text_flags
from text_prep import TextData, prepare
from torch_app.workload import AppError, DataPlan, Shard, Workload, partition_range

if TYPE_CHECKING:
    from torch import nn


class TextPlan(DataPlan):
    """The text these flags ask for, its files checked before anything is made."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.text = text_flags.text_source(args)
        self.source = text_flags.source_name(self.text)
        try:
            text_flags.check_files(self.text)
        except ValueError as exc:
            raise AppError(f"bad text data: {exc}") from exc

    def identity(self) -> dict[str, Any]:
        return text_flags.data_identity(self.text)

    def key(self) -> Any:
        return self.text  # the flags that make the data, paths resolved

    def load(self, rank: int = 0, ranks: int = 1) -> Shard:
        try:
            data = prepare(self.text)
        except ValueError as exc:
            raise AppError(f"bad text data: {exc}") from exc
        return text_shard(data, rank, ranks)


def text_shard(data: TextData, rank: int, ranks: int) -> Shard:
    """Rank `rank`'s contiguous part of the training and validation documents, embedded."""
    ts, tc = partition_range(len(data.train_ids), ranks, rank)
    vs, vc = partition_range(len(data.val_ids), ranks, rank)
    return Shard(
        train_x=data.embeddings[data.train_ids[ts : ts + tc]],
        train_y=data.train_labels[ts : ts + tc].astype(np.int64),
        val_x=data.embeddings[data.val_ids[vs : vs + vc]],
        val_y=data.val_labels[vs : vs + vc].astype(np.int64),
        train_samples=len(data.train_ids),
        classes=data.classes,
        about={"classes": data.classes, "vocabulary": data.vocabulary},
    )


class TextWorkload(Workload):
    """A text classifier: embedded words -> its body -> the News20 head (textmodels_torch)."""

    batch_size = text_flags.BATCH_SIZE
    path_flags = ("--newsDir", "--gloveFile")
    shape_flag: str  # the flag that sizes the body (an echoed hyperparameter)

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        text_flags.add_text_flags(parser)

    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        return text_flags.text_hyperparameters(args, self.shape_flag)

    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        return TextPlan(args)


class TextCNN(TextWorkload):
    name = "textcnn_torch"
    description = "A text CNN on PyTorch for PipeTune (a trial segment)"
    learning_rate = text_flags.CNN_LEARNING_RATE
    shape_flag = text_flags.FILTERS

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        super().add_flags(parser)
        text_flags.add_cnn_flags(parser)

    def problems(self, args: argparse.Namespace) -> list[str]:
        return text_flags.cnn_problems(args)

    def build_model(self, args: argparse.Namespace, shard: Shard) -> nn.Module:
        from textmodels_torch import ConvBody, classifier

        return classifier(ConvBody(args.embeddingDim, args.filters), args.filters, shard.classes)


class TextLSTM(TextWorkload):
    name = "textlstm_torch"
    description = "An LSTM text classifier on PyTorch for PipeTune (a trial segment)"
    learning_rate = text_flags.LSTM_LEARNING_RATE
    shape_flag = text_flags.HIDDEN_SIZE

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        super().add_flags(parser)
        text_flags.add_lstm_flags(parser)

    def problems(self, args: argparse.Namespace) -> list[str]:
        return text_flags.lstm_problems(args)

    def build_model(self, args: argparse.Namespace, shard: Shard) -> nn.Module:
        from textmodels_torch import LSTMBody, classifier

        body = LSTMBody(args.embeddingDim, args.hiddenSize)
        return classifier(body, args.hiddenSize, shard.classes)
