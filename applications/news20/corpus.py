"""A seeded text corpus in the style of 20 Newsgroups, generated here (no downloads).

Words follow a Zipf law over a lexicon of pronounceable pseudo-words. Each class has its own
topic words, and classes come in groups (as comp.*, rec.*, sci.*, talk.* do) that share
group words, so that classes of one group are easier to confuse than others. A document of
class c draws each token from its topic (c's words, or its group's) with probability
`topic_share`, else from the background Zipf law, so the topic words carry the label among
common words; its length is log-normal, so documents are padded or truncated later. The same
spec (seed included) gives the same corpus, token for token.

Pure numpy: the unit tests run it without a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONSONANTS = "bdfghklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = tuple(c + v for c in CONSONANTS for v in VOWELS)
# The most frequent words (the, of, and...) are never topic words.
COMMON_WORDS = 50
CLASSES_PER_GROUP = 4
CLASS_WORD_SHARE = 0.6  # of a topic token: the class's own word, else a word of its group


@dataclass(frozen=True)
class Corpus:
    """Documents as arrays of word ids into `words`, and each one's class."""

    words: tuple[str, ...]  # the spelling of each word id
    docs: tuple[np.ndarray, ...]  # one 1-D int32 array of word ids per document
    labels: np.ndarray  # the class of each document, from 0
    class_names: tuple[str, ...]
    # the source's own train/validation split (True: held out), or None: the app splits
    held_out: np.ndarray | None = None


@dataclass(frozen=True)
class CorpusSpec:
    """What a synthetic corpus is made from; `problems()` names every bad value."""

    docs: int = 2000
    classes: int = 20
    lexicon: int = 5000  # distinct words
    mean_length: int = 120  # tokens per document, on average
    topic_words: int = 40  # own words per class, and shared words per group
    topic_share: float = 0.12  # share of a document's tokens drawn from its topic
    zipf: float = 1.1  # exponent of the background word frequencies
    seed: int = 0

    @property
    def groups(self) -> int:
        return max(1, self.classes // CLASSES_PER_GROUP)

    def problems(self) -> list[str]:
        out = []
        if self.docs < self.classes:
            out.append(f"docs {self.docs}: fewer than the {self.classes} classes")
        if self.classes < 2:
            out.append(f"classes {self.classes}: at least 2")
        if self.mean_length < 1:
            out.append(f"mean_length {self.mean_length}: at least 1")
        if not 0 < self.topic_share < 1:
            out.append(f"topic_share {self.topic_share}: in (0, 1)")
        if self.topic_words < 1:
            out.append(f"topic_words {self.topic_words}: at least 1")
        needed = COMMON_WORDS + (self.classes + self.groups) * self.topic_words
        if self.lexicon < needed:
            out.append(
                f"lexicon {self.lexicon}: {needed} words at least for {self.classes} classes "
                f"of {self.topic_words} topic words"
            )
        return out


def spell(word_id: int) -> str:
    """A pronounceable pseudo-word, different for every id (two syllables at least)."""
    n, syllables = word_id + len(SYLLABLES), []
    while n:
        n, digit = divmod(n, len(SYLLABLES))
        syllables.append(SYLLABLES[digit])
    return "".join(reversed(syllables))


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Probabilities of ranks 1..n under a Zipf law."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def synthetic_corpus(spec: CorpusSpec) -> Corpus:
    """The corpus `spec` describes; ValueError naming every bad value."""
    problems = spec.problems()
    if problems:
        raise ValueError("bad corpus spec: " + "; ".join(problems))
    rng = np.random.default_rng(spec.seed)
    class_words, group_words = _topics(rng, spec)
    labels = rng.permutation(np.arange(spec.docs) % spec.classes)  # balanced classes
    lengths = _lengths(rng, spec)
    doc_of_token = np.repeat(np.arange(spec.docs), lengths)
    token_label = labels[doc_of_token]
    total = len(doc_of_token)
    background = _draw(rng, zipf_weights(spec.lexicon, spec.zipf), total)
    rank = _draw(rng, zipf_weights(spec.topic_words, 1.0), total)  # which topic word
    own = rng.random(total) < CLASS_WORD_SHARE
    topic = np.where(
        own,
        class_words[token_label, rank],
        group_words[token_label * spec.groups // spec.classes, rank],
    )
    tokens = np.where(rng.random(total) < spec.topic_share, topic, background).astype(np.int32)
    docs = tuple(np.split(tokens, np.cumsum(lengths)[:-1]))
    width = len(str(spec.classes - 1))
    return Corpus(
        words=tuple(spell(i) for i in range(spec.lexicon)),
        docs=docs,
        labels=labels.astype(np.int32),
        class_names=tuple(f"topic{c:0{width}d}" for c in range(spec.classes)),
    )


def _topics(rng: np.random.Generator, spec: CorpusSpec) -> tuple[np.ndarray, np.ndarray]:
    """(classes, topic_words) and (groups, topic_words) word ids, all different, none of
    them among the most common words."""
    candidates = rng.permutation(np.arange(COMMON_WORDS, spec.lexicon))
    per_class = spec.classes * spec.topic_words
    class_words = candidates[:per_class].reshape(spec.classes, spec.topic_words)
    shared = candidates[per_class : per_class + spec.groups * spec.topic_words]
    return class_words, shared.reshape(spec.groups, spec.topic_words)


def _lengths(rng: np.random.Generator, spec: CorpusSpec) -> np.ndarray:
    """Log-normal document lengths around `mean_length`, from a few tokens to 8x the mean."""
    sigma = 0.6
    raw = rng.lognormal(np.log(spec.mean_length) - sigma**2 / 2, sigma, spec.docs)
    low = min(8, spec.mean_length)
    return np.clip(np.rint(raw), low, 8 * spec.mean_length).astype(np.int64)


def _draw(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """`size` indices drawn from the distribution `p` (inverse CDF: fast for large draws)."""
    cdf = np.cumsum(p)
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(p) - 1)
