"""The real 20 Newsgroups and GloVe files, when the user has them (no downloads here).

News20 (`--newsDir`): one directory per class, one file per document, as in
`20news-bydate.tar.gz` and `20news-19997.tar.gz`. Either the class directories sit in the
directory itself (the app then splits the documents), or it holds a `*-train` and a `*-test`
directory with the same classes each (20news-bydate: that split is kept, `-test` held out).
Documents are read whole (as the original app did), decoded as Latin-1 (the newsgroups hold
a few non-UTF-8 bytes), and cut into lower-case words of letters only.

GloVe (`--gloveFile`): a text file of lines `word v1 v2 ... vd` (glove.6B.<d>d.txt).

Pure Python and numpy: unit-tested on small files the tests write.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from corpus import Corpus

WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words of letters only (what the original app's text_to_words kept)."""
    return WORD.findall(text.lower())


def news20_layout(root: Path) -> tuple[Path, Path | None]:
    """(the directory of the classes, the held-out one or None); ValueError if `root` is not
    laid out as News20."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    train = [p for p in subdirs if p.name.endswith("-train")]
    test = [p for p in subdirs if p.name.endswith("-test")]
    if len(train) == 1 and len(test) == 1:
        return train[0], test[0]
    if train or test:
        raise ValueError(
            f"{root}: expected one *-train and one *-test directory, found "
            f"{[p.name for p in train + test]}"
        )
    if len(subdirs) < 2:
        raise ValueError(f"{root}: expected one directory per class, found {len(subdirs)}")
    return root, None


def read_news20(root: Path) -> Corpus:
    """Every document under `root` (see the module's docstring); ValueError naming what is
    missing or empty."""
    train_dir, test_dir = news20_layout(root)
    classes = _class_dirs(train_dir)
    if test_dir is not None and [p.name for p in _class_dirs(test_dir)] != [
        p.name for p in classes
    ]:
        raise ValueError(f"{train_dir} and {test_dir} hold different classes")
    lexicon: dict[str, int] = {}
    docs: list[np.ndarray] = []
    labels: list[int] = []
    held_out: list[bool] = []
    for held, directory in ((False, train_dir), (True, test_dir)):
        if directory is None:
            continue
        for label, class_dir in enumerate(_class_dirs(directory)):
            for path in _documents(class_dir):
                text = path.read_bytes().decode("latin-1")
                ids = [lexicon.setdefault(word, len(lexicon)) for word in tokenize(text)]
                docs.append(np.asarray(ids, dtype=np.int32))
                labels.append(label)
                held_out.append(held)
    return Corpus(
        words=tuple(lexicon),
        docs=tuple(docs),
        labels=np.asarray(labels, dtype=np.int32),
        class_names=tuple(p.name for p in classes),
        held_out=np.asarray(held_out) if test_dir is not None else None,
    )


def _class_dirs(directory: Path) -> list[Path]:
    classes = sorted(p for p in directory.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"{directory}: expected one directory per class, found {len(classes)}")
    return classes


def _documents(class_dir: Path) -> list[Path]:
    files = sorted(p for p in class_dir.iterdir() if p.is_file())
    if not files:
        raise ValueError(f"{class_dir}: no documents")
    return files


def glove_dimension(path: Path) -> int:
    """The width of the vectors in a GloVe file, from its first line."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from exc
    parts = first.rstrip("\n").split(" ")
    if len(parts) < 2:
        raise ValueError(f"{path}:1: expected 'word v1 v2 ...', found {first[:60]!r}")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        raise ValueError(
            f"{path}:1: expected numbers after the word, found {first[:60]!r} "
            "(a word2vec header: GloVe files have none)"
        )
    try:
        [float(v) for v in parts[1:]]
    except ValueError:
        raise ValueError(
            f"{path}:1: expected numbers after the word, found {first[:60]!r}"
        ) from None
    return len(parts) - 1


def read_glove(path: Path, wanted: set[str] | None = None) -> tuple[int, dict[str, np.ndarray]]:
    """(the width, the vectors of the `wanted` words, or of all); ValueError naming the line
    of a vector of another width or not made of numbers."""
    dim = glove_dimension(path)
    vectors: dict[str, np.ndarray] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) <= dim:
                raise ValueError(f"{path}:{number}: {len(parts) - 1} values, expected {dim}")
            word = " ".join(parts[:-dim])  # a few GloVe files have words with spaces
            if wanted is not None and word not in wanted:
                continue
            try:
                vectors[word] = np.asarray(parts[-dim:], dtype=np.float32)
            except ValueError:
                raise ValueError(f"{path}:{number}: values that are not numbers") from None
    return dim, vectors
