"""What the two text apps share: their flags, their data on Spark, and the classifier head.

textcnn.py and textlstm.py differ only in the layers between the embedded words and the
head (`TextWorkload.body`) and in the flag that sizes them; everything else is here, and the
segments run in ../bigdl_app/ as LeNet-5's do.
"""

from __future__ import annotations

import argparse
import functools
import os
import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any

import news20_files
import text_data
from bigdl_app import flags
from bigdl_app.errors import AppArgumentParser, AppError
from bigdl_app.session import Dataset
from bigdl_app.workload import DataPlan, Workload
from corpus import CorpusSpec
from text_prep import Embedding, TextData, TextSource, prepare

APP_DIR = Path(__file__).resolve().parent
HEAD_WIDTH = 128  # the original's Linear(256 -> 128) -> Dropout(0.2) -> ReLU -> Linear(-> classes)
HEAD_DROPOUT = 0.2


def text_parser(app: str, description: str, learning_rate: float) -> AppArgumentParser:
    """A parser with the shared flags: SGD's, the embedding width, and the data's."""
    p = AppArgumentParser(app, description=description)
    flags.add_training_flags(p, batch_size=32, learning_rate=learning_rate)
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
    return p


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


def corpus_spec(args: argparse.Namespace) -> CorpusSpec:
    return CorpusSpec(
        docs=args.docs, classes=args.classes, mean_length=args.docLength, seed=args.seed
    )


def glove_path(args: argparse.Namespace) -> Path | None:
    if not args.gloveFile:
        return None
    return Path(os.path.abspath(args.gloveFile.replace("{dim}", str(args.embeddingDim))))


class TextPlan(DataPlan):
    """The text these flags ask for, checked before Spark starts and made in a thread while
    it does (the corpus, and co-occurrence embeddings or the GloVe file, take seconds)."""

    def __init__(self, app: str, args: argparse.Namespace) -> None:
        self.app = app
        news_dir = Path(os.path.abspath(args.newsDir)) if args.newsDir else None
        self.text = TextSource(
            news_dir=news_dir,
            glove_file=glove_path(args),
            embedding=args.embedding,
            embedding_dim=args.embeddingDim,
            sequence_length=args.sequenceLength,
            max_words=args.maxWords,
            val_fraction=args.valFraction,
            seed=args.seed,
            corpus=corpus_spec(args),
        )
        self.source = "news20" if news_dir else "synthetic"
        self._check_files()
        self._data: TextData | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _check_files(self) -> None:
        try:
            if self.text.news_dir is not None:
                news20_files.news20_layout(self.text.news_dir)
            if self.text.glove_file is not None:
                width = news20_files.glove_dimension(self.text.glove_file)
                if width != self.text.embedding_dim:
                    raise ValueError(
                        f"{self.text.glove_file}: vectors of {width} values, "
                        f"not --embeddingDim {self.text.embedding_dim}"
                    )
        except ValueError as exc:
            raise AppError(f"bad text data: {exc}") from exc

    def identity(self) -> dict[str, Any]:
        t = self.text
        made_of: dict[str, Any] = {"news_dir": str(t.news_dir)}
        if t.news_dir is None:
            spec = t.corpus
            made_of = {"docs": spec.docs, "classes": spec.classes, "doc_length": spec.mean_length}
        return {
            "source": self.source,
            **made_of,
            "seed": t.seed,
            "sequence_length": t.sequence_length,
            "max_words": t.max_words,
            "val_fraction": t.val_fraction,
            "embedding": str(t.glove_file) if t.glove_file else t.embedding,
            "embedding_dim": t.embedding_dim,
        }

    def key(self, partitions: int) -> Any:
        return (self.identity(), partitions)

    def prefetch(self) -> None:
        def work() -> None:
            try:
                self._data = prepare(self.text)
            except ValueError as exc:
                self._error = AppError(f"bad text data: {exc}")
            except BaseException as exc:  # re-raised in the main thread by .data
                self._error = exc

        self._thread = threading.Thread(target=work, name="text-data", daemon=True)
        self._thread.start()

    @property
    def data(self) -> TextData:
        if self._data is None and self._error is None:
            if self._thread is None:
                self.prefetch()
            assert self._thread is not None
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data

    def build(self, sc: Any, partitions: int) -> Dataset:
        """Word indices go to the partitions in chunks, the embedding matrix as a broadcast;
        each partition turns its documents into (sequence, width) samples and caches them."""
        data = self.data
        samples = functools.partial(text_data.embedded_samples, sc.broadcast(data.embeddings))

        def rdd(ids: Any, labels: Any, name: str) -> Any:
            parts = text_data.chunks(ids, labels, partitions)
            return sc.parallelize(parts, partitions).flatMap(samples).setName(name).cache()

        train = rdd(data.train_ids, data.train_labels, f"{self.app}-train")
        val = rdd(data.val_ids, data.val_labels, f"{self.app}-val")
        return Dataset(train, val, train.count(), val.count())

    def describe(self) -> dict[str, Any]:
        return {
            "data_source": self.source,
            "classes": self.data.classes,
            "vocabulary": self.data.vocabulary,
        }


class TextWorkload(Workload):
    """A text classifier: embedded words -> `body` -> the original News20 app's head."""

    shape_flag: str  # the flag that sizes `body` (an echoed hyperparameter)

    @property
    def py_files(self) -> list[Path]:
        return [APP_DIR / "text_data.py"]  # the executors make the samples with it

    def hyperparameters(self, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "batchSize": args.batchSize,
            "learningRate": args.learningRate,
            "learningRateDecay": args.learningRateDecay,
            "momentum": args.momentum,
            "embeddingDim": args.embeddingDim,
            self.shape_flag: getattr(args, self.shape_flag),
            "seed": args.seed,
        }

    def plan_data(self, args: argparse.Namespace) -> DataPlan:
        return TextPlan(self.name, args)

    def build_model(self, args: argparse.Namespace, plan: DataPlan) -> Any:
        from bigdl.dllib.nn.layer import Dropout, Linear, LogSoftMax, ReLU, Sequential

        if not isinstance(plan, TextPlan):
            raise TypeError(f"a text model needs a TextPlan, not {type(plan).__name__}")
        model = Sequential()
        width = self.body(model, args)
        model.add(Linear(width, HEAD_WIDTH))
        model.add(Dropout(HEAD_DROPOUT))
        model.add(ReLU())
        model.add(Linear(HEAD_WIDTH, plan.data.classes))
        model.add(LogSoftMax())
        return model

    @abstractmethod
    def body(self, model: Any, args: argparse.Namespace) -> int:
        """Add the layers from (sequence, embedding) inputs to one vector per document;
        return that vector's width."""
