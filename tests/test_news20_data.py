"""The text apps' data (applications/news20): synthetic corpus, News20 and GloVe files,
vocabulary, sequences, embeddings. numpy and scipy only, no Spark."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

APPS = Path(__file__).resolve().parents[1] / "applications"
sys.path[:0] = [str(APPS / "news20"), str(APPS)]

import news20_files  # noqa: E402
import text_data  # noqa: E402
from corpus import Corpus, CorpusSpec, spell, synthetic_corpus  # noqa: E402
from text_prep import Embedding, TextSource, prepare  # noqa: E402

SMALL = CorpusSpec(docs=400, classes=8, lexicon=1500, mean_length=60, topic_words=20, seed=3)


def bag_of_words(corpus: Corpus) -> np.ndarray:
    counts = np.zeros((len(corpus.docs), len(corpus.words)))
    for row, doc in enumerate(corpus.docs):
        np.add.at(counts[row], doc, 1)
    return counts / counts.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------- synthetic corpus


def test_the_same_spec_gives_the_same_corpus_and_another_seed_another() -> None:
    a, b = synthetic_corpus(SMALL), synthetic_corpus(SMALL)
    assert a.words == b.words and a.class_names == b.class_names
    assert np.array_equal(a.labels, b.labels)
    assert all(np.array_equal(x, y) for x, y in zip(a.docs, b.docs, strict=True))
    other = synthetic_corpus(CorpusSpec(**{**SMALL.__dict__, "seed": 4}))
    assert not np.array_equal(
        np.concatenate(a.docs), np.concatenate(other.docs)[: sum(map(len, a.docs))]
    )


def test_documents_vary_in_length_and_classes_are_balanced() -> None:
    corpus = synthetic_corpus(SMALL)
    lengths = np.array([len(d) for d in corpus.docs])
    assert len(corpus.docs) == 400 and abs(lengths.mean() - 60) < 8
    assert lengths.min() >= 8 and lengths.max() > 2 * 60 and lengths.std() > 15
    assert np.bincount(corpus.labels).tolist() == [50] * 8
    assert corpus.held_out is None and corpus.class_names[0] == "topic0"
    assert all(d.dtype == np.int32 and d.max() < 1500 for d in corpus.docs)


def test_words_follow_a_zipf_law_and_are_spelt_apart() -> None:
    corpus = synthetic_corpus(SMALL)
    counts = np.bincount(np.concatenate(corpus.docs), minlength=1500)
    assert counts[0] > 5 * counts[100] > 0  # the most frequent words dominate
    assert len({spell(i) for i in range(10_000)}) == 10_000
    assert corpus.words[:3] == (spell(0), spell(1), spell(2)) and spell(0).isalpha()


def test_the_label_is_in_the_words_and_classes_of_a_group_look_alike() -> None:
    corpus = synthetic_corpus(SMALL)
    x, y = bag_of_words(corpus), corpus.labels
    train, held = np.arange(320), np.arange(320, 400)
    centroids = np.stack([x[train][y[train] == c].mean(axis=0) for c in range(8)])
    predicted = np.argmax(x[held] @ np.log(centroids + 1e-4).T, axis=1)
    assert (predicted == y[held]).mean() > 0.8  # a bag of words finds the topic
    # 8 classes = 2 groups of 4 sharing group words: classes of one group are closer
    topical = centroids - centroids.mean(axis=0)  # what sets a class apart from the rest
    unit = topical / np.linalg.norm(topical, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = [similarity[a, b] for a in range(8) for b in range(8) if a != b and a // 4 == b // 4]
    other = [similarity[a, b] for a in range(8) for b in range(8) if a // 4 != b // 4]
    assert np.mean(same) > np.mean(other) + 0.15, (np.mean(same), np.mean(other))


def test_a_bad_spec_names_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        synthetic_corpus(CorpusSpec(docs=5, classes=20, lexicon=300, topic_share=1.5))
    message = str(info.value)
    assert "docs 5" in message and "lexicon 300" in message and "topic_share 1.5" in message


# --------------------------------------------------------- vocabulary and sequences


def test_the_vocabulary_skips_the_most_frequent_words_and_keeps_the_next() -> None:
    words = [f"w{i}" for i in range(30)]
    # word i appears 30 - i times: ranked by id; word 29 never
    docs = [np.repeat(np.arange(29), np.arange(30, 1, -1)).astype(np.int32)]
    vocabulary = text_data.build_vocabulary(docs, words, max_words=15, skip_top=10)
    assert vocabulary.words == ("w10", "w11", "w12", "w13", "w14")
    assert vocabulary.index[10] == 1 and vocabulary.index[14] == 5
    assert vocabulary.index[:10].sum() == 0 and vocabulary.index[15:].sum() == 0
    assert len(vocabulary) == 5


def test_sequences_keep_the_first_vocabulary_words_padded_in_front() -> None:
    vocabulary = text_data.Vocabulary(("a", "b", "c"), np.array([0, 1, 2, 3], dtype=np.int32))
    docs = [np.array([1, 0, 2]), np.array([3, 3, 1, 2, 0, 1]), np.array([0, 0])]
    ids = text_data.to_sequences(docs, vocabulary, 4)
    assert ids.tolist() == [[0, 0, 1, 2], [3, 3, 1, 2], [0, 0, 0, 0]]
    assert ids.dtype == np.int32


def test_the_split_is_seeded_and_covers_every_document_once() -> None:
    train, val = text_data.split_documents(101, 0.2, seed=5)
    assert len(val) == 20 and len(train) == 81
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(101))
    again = text_data.split_documents(101, 0.2, seed=5)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, text_data.split_documents(101, 0.2, seed=6)[1])


def test_chunks_hold_every_document_in_order() -> None:
    ids, labels = np.arange(20).reshape(10, 2), np.arange(10)
    parts = text_data.chunks(ids, labels, 3)
    assert [len(p[1]) for p in parts] == [4, 3, 3]
    assert np.concatenate([p[1] for p in parts]).tolist() == list(range(10))


# ------------------------------------------------------------------------ embeddings


def test_cooccurrence_embeddings_put_a_topics_words_together() -> None:
    spec = CorpusSpec(docs=1000, classes=8, lexicon=1500, mean_length=80, topic_words=20, seed=1)
    corpus = synthetic_corpus(spec)
    vocabulary = text_data.build_vocabulary(corpus.docs, corpus.words, max_words=1500)
    ids = text_data.to_sequences(corpus.docs, vocabulary, 80)
    vectors = text_data.cooccurrence_embeddings(ids, len(vocabulary), 16, seed=0)
    assert vectors.shape == (len(vocabulary) + 1, 16) and vectors.dtype == np.float32
    assert not vectors[0].any()
    norms = np.linalg.norm(vectors[1:], axis=1)
    assert np.allclose(norms[norms > 0], 4.0, atol=1e-5)  # sqrt(16)
    assert np.array_equal(vectors, text_data.cooccurrence_embeddings(ids, len(vocabulary), 16, 0))
    # the words most typical of class 0 (frequent there, rare elsewhere) are one another's
    # neighbours far more often than chance
    x = bag_of_words(corpus)
    lift = x[corpus.labels == 0].mean(axis=0) / (x.mean(axis=0) + 1e-9)
    topic = [vocabulary.index[w] for w in np.argsort(-lift)[:10] if vocabulary.index[w]]
    hits = 0
    for i in topic:
        nearest = np.argsort(-(vectors @ vectors[i]))[1:11]
        hits += len(set(nearest.tolist()) & set(topic))
    assert hits / (10 * len(topic)) > 0.3  # chance: ~10 / vocabulary = 0.7 %


def test_embeddings_wider_than_the_vocabulary_are_refused() -> None:
    with pytest.raises(ValueError, match="larger than the vocabulary"):
        text_data.cooccurrence_embeddings(np.ones((2, 3), dtype=np.int32), 4, 8, seed=0)


def test_random_embeddings_are_seeded_with_a_zero_padding_row() -> None:
    a = text_data.random_embeddings(50, 8, seed=2)
    assert a.shape == (51, 8) and not a[0].any() and a[1:].any()
    assert np.array_equal(a, text_data.random_embeddings(50, 8, seed=2))
    assert not np.array_equal(a, text_data.random_embeddings(50, 8, seed=3))


# ------------------------------------------------------------------- News20 and GloVe


def write_news20(root: Path, docs: dict[str, list[str | bytes]]) -> Path:
    for name, texts in docs.items():
        (root / name).mkdir(parents=True)
        for number, text in enumerate(texts):
            path = root / name / str(50000 + number)
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def test_news20_class_directories_are_read_word_by_word(tmp_path: Path) -> None:
    root = write_news20(
        tmp_path / "news",
        {
            "sci.space": ["From: a@b\nSubject: Orbit!\n\nThe orbit, the MOON.", "moon moon"],
            "rec.autos": [b"Engine caf\xe9 oil-change 2024"],  # Latin-1, digits
        },
    )
    corpus = news20_files.read_news20(root)
    assert corpus.class_names == ("rec.autos", "sci.space") and corpus.held_out is None
    texts = [[corpus.words[i] for i in doc] for doc in corpus.docs]
    assert texts[0] == ["engine", "caf", "oil", "change"]  # letters a-z only
    assert texts[1] == ["from", "a", "b", "subject", "orbit", "the", "orbit", "the", "moon"]
    assert corpus.labels.tolist() == [0, 1, 1]


def test_news20_bydate_keeps_its_own_split(tmp_path: Path) -> None:
    root = tmp_path / "20news-bydate"
    write_news20(root / "20news-bydate-train", {"a": ["x y", "y"], "b": ["z"]})
    write_news20(root / "20news-bydate-test", {"a": ["y y"], "b": ["z x"]})
    corpus = news20_files.read_news20(root)
    assert corpus.held_out is not None
    assert corpus.held_out.tolist() == [False, False, False, True, True]
    assert corpus.labels.tolist() == [0, 0, 1, 0, 1]


def test_news20_layout_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        news20_files.read_news20(tmp_path / "missing")
    write_news20(tmp_path / "one", {"only": ["x"]})
    with pytest.raises(ValueError, match="one directory per class, found 1"):
        news20_files.read_news20(tmp_path / "one")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    write_news20(tmp_path / "empty", {"b": ["x"]})
    with pytest.raises(ValueError, match=r"empty/a: no documents"):
        news20_files.read_news20(tmp_path / "empty")
    split = tmp_path / "split"
    write_news20(split / "x-train", {"a": ["x"], "b": ["y"]})
    write_news20(split / "x-test", {"a": ["x"], "c": ["y"]})
    with pytest.raises(ValueError, match="hold different classes"):
        news20_files.read_news20(split)


def test_synthetic_text_written_as_news20_reads_back_the_same(tmp_path: Path) -> None:
    corpus = synthetic_corpus(CorpusSpec(docs=40, classes=4, lexicon=600, topic_words=10))
    docs: dict[str, list[str | bytes]] = {name: [] for name in corpus.class_names}
    for doc, label in zip(corpus.docs, corpus.labels, strict=True):
        docs[corpus.class_names[label]].append(" ".join(corpus.words[i] for i in doc))
    read = news20_files.read_news20(write_news20(tmp_path / "n", docs))
    assert read.class_names == corpus.class_names
    written = sorted(
        (int(lab), " ".join(corpus.words[i] for i in d))
        for d, lab in zip(corpus.docs, corpus.labels, strict=True)
    )
    back = sorted(
        (int(lab), " ".join(read.words[i] for i in d))
        for d, lab in zip(read.docs, read.labels, strict=True)
    )
    assert written == back


def write_glove(path: Path, rows: dict[str, list[float]]) -> Path:
    path.write_text("".join(f"{w} {' '.join(str(v) for v in vec)}\n" for w, vec in rows.items()))
    return path


def test_glove_vectors_are_read_for_the_wanted_words(tmp_path: Path) -> None:
    path = write_glove(
        tmp_path / "g.txt", {"the": [0.1, 0.2, 0.3], "moon": [1, 2, 3], ",": [0, 0, 1]}
    )
    assert news20_files.glove_dimension(path) == 3
    dim, vectors = news20_files.read_glove(path, {"moon", "absent"})
    assert dim == 3 and list(vectors) == ["moon"]
    assert vectors["moon"].tolist() == [1.0, 2.0, 3.0] and vectors["moon"].dtype == np.float32
    assert len(news20_files.read_glove(path)[1]) == 3


def test_a_bad_glove_line_is_named(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(ValueError, match=r"short.txt:2: 2 values, expected 3"):
        news20_files.read_glove(short)
    words = tmp_path / "words.txt"
    words.write_text("a 1 2\nb 1 x\n")
    with pytest.raises(ValueError, match=r"words.txt:2: values that are not numbers"):
        news20_files.read_glove(words, {"b"})
    header = tmp_path / "header.txt"
    header.write_text("400000 50\n")
    with pytest.raises(ValueError, match=r"header.txt:1: expected numbers"):
        news20_files.glove_dimension(header)
    bare = tmp_path / "bare.txt"
    bare.write_text("x\n")
    with pytest.raises(ValueError, match=r"bare.txt:1: expected 'word v1 v2 ...'"):
        news20_files.glove_dimension(bare)
    with pytest.raises(ValueError, match="cannot read"):
        news20_files.glove_dimension(tmp_path / "none.txt")


# --------------------------------------------------------------------- the whole path


def source(**changes: object) -> TextSource:
    base = TextSource(
        news_dir=None,
        glove_file=None,
        embedding=Embedding.COOCCURRENCE,
        embedding_dim=8,
        sequence_length=30,
        max_words=500,
        val_fraction=0.25,
        seed=0,
        corpus=CorpusSpec(docs=200, classes=4, lexicon=600, mean_length=40, topic_words=10),
    )
    return TextSource(**{**base.__dict__, **changes})


def test_a_synthetic_source_gives_the_same_arrays_every_time() -> None:
    a, b = prepare(source()), prepare(source())
    for name in ("train_ids", "train_labels", "val_ids", "val_labels", "embeddings"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.train_ids.shape == (150, 30) and a.val_ids.shape == (50, 30)
    assert a.classes == 4 and a.embeddings.shape == (a.vocabulary + 1, 8)
    assert a.vocabulary <= 500 - 10 and a.train_ids.max() <= a.vocabulary
    other = prepare(
        source(
            seed=1,
            corpus=CorpusSpec(
                docs=200, classes=4, lexicon=600, mean_length=40, topic_words=10, seed=1
            ),
        )
    )
    assert not np.array_equal(a.train_ids, other.train_ids)
    rand = prepare(source(embedding=Embedding.RANDOM))
    assert np.array_equal(rand.train_ids, a.train_ids) and not np.array_equal(
        rand.embeddings, a.embeddings
    )


def test_news20_with_glove_takes_its_vectors_and_split(tmp_path: Path) -> None:
    root = tmp_path / "20news-bydate"
    common = "a b c d e f g h i j " * 5  # the 10 most frequent words: left out
    texts = [common + "orbit moon moon", common + "moon rocket", common + "engine oil", common]
    write_news20(root / "20news-bydate-train", {"sci": texts[:2], "autos": texts[2:]})
    write_news20(root / "20news-bydate-test", {"sci": ["rocket moon"], "autos": ["oil wheel"]})
    glove = write_glove(tmp_path / "glove.txt", {"moon": [1, 0], "oil": [0, 1], "zebra": [5, 5]})
    data = prepare(source(news_dir=root, glove_file=glove, embedding_dim=2, max_words=100))
    assert data.class_names == ("autos", "sci")
    assert data.train_labels.tolist() == [0, 0, 1, 1] and data.val_labels.tolist() == [0, 1]
    assert data.words == ("moon", "engine", "oil", "orbit", "rocket")  # by count, then first seen
    assert data.embeddings.tolist() == [[0, 0], [1, 0], [0, 0], [0, 1], [0, 0], [0, 0]]
    assert data.val_ids[0].tolist()[-2:] == [0, 3] and data.val_ids[1].tolist()[-2:] == [5, 1]
    with pytest.raises(ValueError, match="vectors of 2 values, not 3"):
        prepare(source(news_dir=root, glove_file=glove, embedding_dim=3))
