"""What a text app trains on, made on the driver: a corpus, split, vocabulary, sequences and
embeddings, from the real News20 and GloVe files or from a seeded synthetic corpus.

Pure numpy: the unit tests check that the same source gives the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import news20_files
import numpy as np
import text_data
from corpus import Corpus, CorpusSpec, synthetic_corpus


class Embedding:
    """Where the word vectors come from when no GloVe file is given."""

    COOCCURRENCE = "cooccurrence"
    RANDOM = "random"
    CHOICES = (COOCCURRENCE, RANDOM)


@dataclass(frozen=True)
class TextSource:
    """The flags that make a text app's data."""

    news_dir: Path | None  # the real News20, or None: a synthetic corpus
    glove_file: Path | None  # GloVe vectors, or None: `embedding`
    embedding: str  # Embedding.COOCCURRENCE or Embedding.RANDOM
    embedding_dim: int
    sequence_length: int
    max_words: int
    val_fraction: float  # when the corpus has no split of its own
    seed: int
    corpus: CorpusSpec  # the synthetic corpus (its seed is `seed`)


@dataclass(frozen=True)
class TextData:
    """Word indices per document (front-padded), labels from 0, and the embedding matrix."""

    train_ids: np.ndarray  # (documents, sequence_length) int32
    train_labels: np.ndarray
    val_ids: np.ndarray
    val_labels: np.ndarray
    embeddings: np.ndarray  # (vocabulary + 1, embedding_dim) float32; row 0: padding
    words: tuple[str, ...]  # the vocabulary: the word at index i + 1
    class_names: tuple[str, ...]

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def vocabulary(self) -> int:
        return len(self.words)


def load_corpus(source: TextSource) -> Corpus:
    if source.news_dir is not None:
        return news20_files.read_news20(source.news_dir)
    return synthetic_corpus(source.corpus)


def prepare(source: TextSource) -> TextData:
    """The arrays `source` describes; ValueError naming what is wrong with the files or sizes."""
    corpus = load_corpus(source)
    if corpus.held_out is not None:
        train_idx, val_idx = np.flatnonzero(~corpus.held_out), np.flatnonzero(corpus.held_out)
    else:
        train_idx, val_idx = text_data.split_documents(
            len(corpus.docs), source.val_fraction, source.seed
        )
    train_docs = [corpus.docs[i] for i in train_idx]
    vocabulary = text_data.build_vocabulary(train_docs, corpus.words, source.max_words)
    if not len(vocabulary):
        raise ValueError(f"no vocabulary: the {len(train_docs)} training documents are too short")
    train_ids = text_data.to_sequences(train_docs, vocabulary, source.sequence_length)
    val_ids = text_data.to_sequences(
        [corpus.docs[i] for i in val_idx], vocabulary, source.sequence_length
    )
    return TextData(
        train_ids=train_ids,
        train_labels=corpus.labels[train_idx],
        val_ids=val_ids,
        val_labels=corpus.labels[val_idx],
        embeddings=embeddings(source, vocabulary, train_ids),
        words=vocabulary.words,
        class_names=corpus.class_names,
    )


def embeddings(
    source: TextSource, vocabulary: text_data.Vocabulary, train_ids: np.ndarray
) -> np.ndarray:
    """The embedding matrix: GloVe's vectors, or the corpus's co-occurrences, or random."""
    dim = source.embedding_dim
    if source.glove_file is not None:
        width, vectors = news20_files.read_glove(source.glove_file, set(vocabulary.words))
        if width != dim:
            raise ValueError(f"{source.glove_file}: vectors of {width} values, not {dim}")
        return text_data.glove_matrix(vocabulary.words, vectors, dim)
    if source.embedding == Embedding.RANDOM:
        return text_data.random_embeddings(len(vocabulary), dim, source.seed)
    return text_data.cooccurrence_embeddings(train_ids, len(vocabulary), dim, source.seed)
