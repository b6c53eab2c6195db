"""The text apps' own flags, the same on both engines: what makes the data (corpus,
vocabulary, sequences, embeddings), each model's width, their checks, the `TextSource` they
make, what the apps echo and store, and the models' fixed sizes. No engine import: the BigDL
apps (textapp.py) and the torch apps (textapp_torch.py) both read their flags here, so the
same flags make the same documents, vocabulary, split and embeddings on both."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import news20_files
from corpus import CorpusSpec
from text_prep import Embedding, TextSource

BATCH_SIZE = 32  # the default of --batchSize
CNN_LEARNING_RATE = 0.05
LSTM_LEARNING_RATE = 0.2  # an LSTM's gradients are smaller: 0.05 learns in 3x the epochs (README)
KERNEL_WIDTH = 5  # words per filter of the CNN, as in the original
HEAD_WIDTH = 128  # the original's Linear(256 -> 128) -> Dropout(0.2) -> ReLU -> Linear(-> classes)
HEAD_DROPOUT = 0.2
FILTERS = "filters"  # the CNN's width flag (a hyperparameter)
HIDDEN_SIZE = "hiddenSize"  # the LSTM's


def add_text_flags(p: argparse.ArgumentParser) -> None:
    """The embedding width, and the flags that make the data."""
    p.add_argument("--embeddingDim", type=int, default=50, help="word vector width")
    p.add_argument("--newsDir", default="", help="20 Newsgroups directory; else synthetic text")
    p.add_argument(
        "--gloveFile", default="", help="GloVe vectors ('{dim}': --embeddingDim); else --embedding"
    )
    p.add_argument("--embedding", choices=Embedding.CHOICES, default=Embedding.COOCCURRENCE)
    p.add_argument("--docs", type=int, default=2000, help="synthetic documents in all")
    p.add_argument("--classes", type=int, default=20, help="synthetic classes")
    p.add_argument("--docLength", type=int, default=120, help="synthetic mean tokens per document")
    p.add_argument("--sequenceLength", type=int, default=100, help="words read per document")
    p.add_argument("--maxWords", type=int, default=5000, help="vocabulary: most frequent words")
    p.add_argument("--valFraction", type=float, default=0.2, help="held out, unless News20 splits")


def text_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    for flag in ("embeddingDim", "sequenceLength", "maxWords"):
        if getattr(args, flag) < 1:
            problems.append(f"--{flag} must be >= 1")
    if not 0 < args.valFraction < 1:
        problems.append("--valFraction must be in (0, 1)")
    if not args.newsDir:
        problems += [f"synthetic corpus: {p}" for p in corpus_spec(args).problems()]
    return problems


def add_cnn_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(f"--{FILTERS}", type=int, default=64, help="convolution filters")


def cnn_problems(args: argparse.Namespace) -> list[str]:
    problems = text_problems(args)
    if args.filters < 1:
        problems.append("--filters must be >= 1")
    if args.sequenceLength < KERNEL_WIDTH:
        problems.append(f"--sequenceLength must be >= {KERNEL_WIDTH} (the filters' width)")
    return problems


def add_lstm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(f"--{HIDDEN_SIZE}", type=int, default=64, help="LSTM units")


def lstm_problems(args: argparse.Namespace) -> list[str]:
    problems = text_problems(args)
    if args.hiddenSize < 1:
        problems.append("--hiddenSize must be >= 1")
    return problems


def corpus_spec(args: argparse.Namespace) -> CorpusSpec:
    return CorpusSpec(
        docs=args.docs, classes=args.classes, mean_length=args.docLength, seed=args.seed
    )


def glove_path(args: argparse.Namespace) -> Path | None:
    if not args.gloveFile:
        return None
    return Path(os.path.abspath(args.gloveFile.replace("{dim}", str(args.embeddingDim))))


def text_source(args: argparse.Namespace) -> TextSource:
    """The data these flags make (paths made absolute)."""
    return TextSource(
        news_dir=Path(os.path.abspath(args.newsDir)) if args.newsDir else None,
        glove_file=glove_path(args),
        embedding=args.embedding,
        embedding_dim=args.embeddingDim,
        sequence_length=args.sequenceLength,
        max_words=args.maxWords,
        val_fraction=args.valFraction,
        seed=args.seed,
        corpus=corpus_spec(args),
    )


def source_name(source: TextSource) -> str:
    """Where the documents come from, as the `start` event names it."""
    return "news20" if source.news_dir else "synthetic"


def check_files(source: TextSource) -> None:
    """ValueError naming what is wrong with the News20 directory or the GloVe file (their
    layout and width only: reading them is the data's work)."""
    if source.news_dir is not None:
        news20_files.news20_layout(source.news_dir)
    if source.glove_file is not None:
        width = news20_files.glove_dimension(source.glove_file)
        if width != source.embedding_dim:
            raise ValueError(
                f"{source.glove_file}: vectors of {width} values, "
                f"not --embeddingDim {source.embedding_dim}"
            )


def data_identity(source: TextSource) -> dict[str, Any]:
    """What must not change across the segments of one trial (stored in meta.json)."""
    made_of: dict[str, Any] = {"news_dir": str(source.news_dir)}
    if source.news_dir is None:
        spec = source.corpus
        made_of = {"docs": spec.docs, "classes": spec.classes, "doc_length": spec.mean_length}
    return {
        "source": source_name(source),
        **made_of,
        "seed": source.seed,
        "sequence_length": source.sequence_length,
        "max_words": source.max_words,
        "val_fraction": source.val_fraction,
        "embedding": str(source.glove_file) if source.glove_file else source.embedding,
        "embedding_dim": source.embedding_dim,
    }


def text_hyperparameters(args: argparse.Namespace, shape_flag: str) -> dict[str, Any]:
    """What a text app echoes in every event and stores in meta.json, on either engine."""
    return {
        "batchSize": args.batchSize,
        "learningRate": args.learningRate,
        "learningRateDecay": args.learningRateDecay,
        "momentum": args.momentum,
        "embeddingDim": args.embeddingDim,
        shape_flag: getattr(args, shape_flag),
        "seed": args.seed,
    }
