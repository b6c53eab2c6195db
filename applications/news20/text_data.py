"""From documents to what the text models read: vocabulary, sequences, embeddings, samples.

As the original News20 app did: the vocabulary is the `max_words` most frequent words of the
training documents but the `skip_top` most frequent (stop words); a document keeps its
vocabulary words only, its first `length` of them, padded with 0 (a zero vector) to `length`.
Unlike the original, padding goes in front, so an LSTM's last step reads the text, not
padding. Embeddings are a matrix with one row per vocabulary index (row 0: padding, zeros):
from GloVe vectors, from the corpus's own co-occurrences (PPMI, factorised by a seeded
randomised SVD: words used alike get close vectors, as with GloVe), or random.

Pure numpy and scipy, so that the unit tests run it without a JVM; the executors import it
(SparkContext.addPyFile) to turn word ids into BigDL samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LABEL_OFFSET = 1  # BigDL numbers classes from 1
SKIP_TOP = 10  # the most frequent words, left out of the vocabulary
COOCCURRENCE_WINDOW = 5


@dataclass(frozen=True)
class Vocabulary:
    """Which words the model reads, each with its index from 1 (0 is padding)."""

    words: tuple[str, ...]  # the word at index i + 1
    index: np.ndarray  # per word id of the corpus: its vocabulary index, or 0 (left out)

    def __len__(self) -> int:
        return len(self.words)


def split_documents(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation documents: a seeded shuffle, then a cut."""
    order = np.random.default_rng(seed).permutation(count)
    held = round(count * val_fraction)
    return np.sort(order[held:]), np.sort(order[:held])


def build_vocabulary(
    docs: Sequence[np.ndarray],
    words: Sequence[str],
    max_words: int,
    skip_top: int = SKIP_TOP,
) -> Vocabulary:
    """The `max_words` most frequent words of `docs` but the `skip_top` first (ties: the
    lower word id first, so the same documents always give the same vocabulary)."""
    counts = np.bincount(np.concatenate(docs), minlength=len(words)) if docs else np.zeros(0)
    ranked = np.argsort(-counts, kind="stable")[: np.count_nonzero(counts)]
    chosen = ranked[skip_top:max_words]
    index = np.zeros(len(words), dtype=np.int32)
    index[chosen] = np.arange(1, len(chosen) + 1, dtype=np.int32)
    return Vocabulary(tuple(words[i] for i in chosen), index)


def to_sequences(docs: Sequence[np.ndarray], vocabulary: Vocabulary, length: int) -> np.ndarray:
    """(documents, length) int32 vocabulary indices: each document's first `length`
    vocabulary words, padded in front with 0."""
    out = np.zeros((len(docs), length), dtype=np.int32)
    for row, doc in enumerate(docs):
        kept = vocabulary.index[doc]
        kept = kept[kept > 0][:length]
        if len(kept):
            out[row, length - len(kept) :] = kept
    return out


def random_embeddings(size: int, dim: int, seed: int) -> np.ndarray:
    """(size + 1, dim) float32: seeded standard normal vectors (length ~sqrt(dim), as
    `cooccurrence_embeddings`); row 0 zeros."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((size + 1, dim))
    matrix[0] = 0.0
    return matrix.astype(np.float32)


def cooccurrence_embeddings(
    sequences: np.ndarray, size: int, dim: int, seed: int, window: int = COOCCURRENCE_WINDOW
) -> np.ndarray:
    """(size + 1, dim) float32 from the co-occurrences of the vocabulary's words within
    `window` tokens in `sequences`: positive PMI, its rank-`dim` factor (seeded randomised
    SVD), rows scaled to length sqrt(dim) (values of about 1, and about GloVe's lengths);
    row 0 and words never seen with another are zeros."""
    from scipy import sparse

    if dim > size:
        raise ValueError(f"embedding width {dim} is larger than the vocabulary ({size} words)")
    rows, cols = [], []
    for offset in range(1, window + 1):
        a, b = sequences[:, :-offset].ravel(), sequences[:, offset:].ravel()
        both = (a > 0) & (b > 0)
        rows += [a[both], b[both]]
        cols += [b[both], a[both]]
    i, j = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(size + 1, size + 1))
    ppmi = _ppmi(counts)
    vectors = _randomized_svd_factor(ppmi, dim, seed)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms / np.sqrt(dim), out=np.zeros_like(vectors), where=norms > 0)
    vectors[0] = 0.0
    return vectors.astype(np.float32)


def _ppmi(counts: Any) -> Any:
    """Positive pointwise mutual information of a sparse co-occurrence count matrix."""
    from scipy import sparse

    counts = counts.tocoo()
    total = counts.sum()
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    col_sums = np.asarray(counts.sum(axis=0)).ravel()
    pmi = np.log(counts.data * total / (row_sums[counts.row] * col_sums[counts.col]))
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def _randomized_svd_factor(matrix: Any, dim: int, seed: int, power: int = 3) -> np.ndarray:
    """U·sqrt(S) of the best rank-`dim` approximation of `matrix` (Halko et al.: a seeded
    Gaussian range finder with power iterations, then an exact SVD of the small factor)."""
    rng = np.random.default_rng(seed)
    probe = rng.standard_normal((matrix.shape[1], min(dim + 10, matrix.shape[1])))
    basis, _ = np.linalg.qr(matrix @ probe)
    for _ in range(power):
        basis, _ = np.linalg.qr(matrix.T @ basis)
        basis, _ = np.linalg.qr(matrix @ basis)
    small = np.asarray(matrix.T @ basis).T  # basis' · matrix, with the sparse one on the left
    u, s, _ = np.linalg.svd(small, full_matrices=False)
    return (basis @ u[:, :dim]) * np.sqrt(s[:dim])


def glove_matrix(words: Sequence[str], vectors: dict[str, np.ndarray], dim: int) -> np.ndarray:
    """(len(words) + 1, dim) float32: each vocabulary word's GloVe vector; zeros for the
    words GloVe lacks (as the original app did) and for row 0."""
    matrix = np.zeros((len(words) + 1, dim), dtype=np.float32)
    for i, word in enumerate(words, start=1):
        vector = vectors.get(word)
        if vector is not None:
            matrix[i] = vector
    return matrix


def chunks(ids: np.ndarray, labels: np.ndarray, parts: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The documents in `parts` contiguous (ids, labels) chunks, one per partition."""
    return list(zip(np.array_split(ids, parts), np.array_split(labels, parts), strict=True))


def embedded_samples(embeddings: Any, chunk: tuple[np.ndarray, np.ndarray]) -> Iterator[Any]:
    """BigDL samples of one chunk: each document as (length, dim) float32 vectors and its
    1-based label. Runs on the executors; `embeddings` is a broadcast of the matrix."""
    from bigdl.dllib.utils.common import Sample

    matrix = embeddings.value
    ids, labels = chunk
    for row, label in zip(ids, labels, strict=True):
        yield Sample.from_ndarray(matrix[row], np.float32(label + LABEL_OFFSET))
