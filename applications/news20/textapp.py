"""What the two BigDL text apps share: their parser, their data on Spark, and the classifier
head.

textcnn.py and textlstm.py differ only in the layers between the embedded words and the
head (`TextWorkload.body`) and in the flag that sizes them; everything else is here (the
flags themselves in text_flags.py, shared with the torch apps), and the segments run in
../bigdl_app/ as LeNet-5's do.
"""

from __future__ import annotations

import argparse
import functools
import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any

import text_data
import text_flags
from bigdl_app import flags
from bigdl_app.errors import AppArgumentParser, AppError
from bigdl_app.session import Dataset
from bigdl_app.workload import DataPlan, Workload
from text_flags import HEAD_DROPOUT, HEAD_WIDTH
from text_prep import TextData, prepare

APP_DIR = Path(__file__).resolve().parent


def text_parser(app: str, description: str, learning_rate: float) -> AppArgumentParser:
    """A parser with the shared flags: SGD's, the embedding width, and the data's."""
    p = AppArgumentParser(app, description=description)
    flags.add_training_flags(p, batch_size=text_flags.BATCH_SIZE, learning_rate=learning_rate)
    text_flags.add_text_flags(p)
    return p


class TextPlan(DataPlan):
    """The text these flags ask for, checked before Spark starts and made in a thread while
    it does (the corpus, and co-occurrence embeddings or the GloVe file, take seconds)."""

    def __init__(self, app: str, args: argparse.Namespace) -> None:
        self.app = app
        self.text = text_flags.text_source(args)
        self.source = text_flags.source_name(self.text)
        try:
            text_flags.check_files(self.text)
        except ValueError as exc:
            raise AppError(f"bad text data: {exc}") from exc
        self._data: TextData | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def identity(self) -> dict[str, Any]:
        return text_flags.data_identity(self.text)

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
        return text_flags.text_hyperparameters(args, self.shape_flag)

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
