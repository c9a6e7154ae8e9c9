"""Offline extractive summaries for Japanese and English: TextRank over character bigrams.

No model, no download: sentences are nodes, shared character bigrams (Japanese) and words
(Latin script) are edges, and a PageRank biased toward the opening picks the central sentences.
"""

from __future__ import annotations

import math
import operator
import re
import unicodedata
from functools import lru_cache

from publisher.sentences import split_sentences

DAMPING = 0.85
ITERATIONS = 50
# Shorter than this, a "sentence" is usually a heading, a byline or a fragment.
MIN_CHARS = 12
# Only the opening sentences are ranked: a summary is drawn from the lead, and the graph is
# dense (n² edges), so a post of thousands of sentences must not cost seconds.
MAX_RANKED = 100
LATIN_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "the a an and or but of to in on at for with by from as is are was were be been it its "
        "this that these those he she they we you i his her their our your not no so if then "
        "than there has have had do does did will would can could should may might",
    )
)


def summarize(text: str, *, max_sentences: int = 2) -> list[str]:
    """The `max_sentences` most central sentences of `text`, in their original order."""
    return list(_summary(text, max_sentences))


@lru_cache(maxsize=32)
def _summary(text: str, max_sentences: int) -> tuple[str, ...]:
    """summarize, memoized: every network's composer summarizes the same lead."""
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return tuple(sentences)
    candidates = ([i for i, s in enumerate(sentences) if _is_statement(s)] or list(
        range(len(sentences))
    ))[:MAX_RANKED]
    if len(candidates) <= max_sentences:
        return tuple(sentences[i] for i in candidates)
    features = [_features(sentences[i]) for i in candidates]
    scores = _rank(features)
    best = sorted(range(len(candidates)), key=lambda k: (-scores[k], k))[:max_sentences]
    return tuple(sentences[candidates[k]] for k in sorted(best))



def clear_caches() -> None:
    """Forget memoized results (benchmarks measure a cold edition with it)."""
    _summary.cache_clear()


def _is_statement(sentence: str) -> bool:
    """Long enough to say something, and not a question (a summary states, it does not ask)."""
    return len(sentence) >= MIN_CHARS and not sentence.rstrip("」』）)\"'”").endswith(("?", "？"))


def _features(sentence: str) -> frozenset[str]:
    """Words of Latin script plus character bigrams of everything else."""
    text = unicodedata.normalize("NFKC", sentence).lower()
    words = {w for w in LATIN_WORD.findall(text) if w not in STOPWORDS and len(w) > 1}
    rest = LATIN_WORD.sub(" ", text)
    bigrams: set[str] = set()
    for run in re.findall(r"[^\W\d_a-z]+", rest):
        bigrams.update(run[i : i + 2] for i in range(len(run) - 1))
    return frozenset(words | bigrams)


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """TextRank's overlap normalised by log sizes (Mihalcea & Tarau 2004)."""
    if len(a) < 2 or len(b) < 2:
        return 0.0
    return len(a & b) / (math.log(len(a)) + math.log(len(b)))


def _rank(features: list[frozenset[str]]) -> list[float]:
    """Personalised PageRank: central sentences win, ties lean to the opening like a news lead."""
    n = len(features)
    weights = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            weights[i][j] = weights[j][i] = _similarity(features[i], features[j])
    out_sums = [sum(row) for row in weights]
    prior_raw = [1.0 / (i + 1) for i in range(n)]
    prior = [p / sum(prior_raw) for p in prior_raw]
    # shares[i][j]: the part of j's score that flows to i
    shares = [[weights[j][i] / out_sums[j] if out_sums[j] else 0.0 for j in range(n)]
              for i in range(n)]
    dangling = [j for j in range(n) if not out_sums[j]]
    scores = prior[:]
    for _ in range(ITERATIONS):
        spread = sum(scores[j] for j in dangling)
        scores = [
            (1 - DAMPING) * prior[i]
            + DAMPING * sum(map(operator.mul, scores, shares[i]))
            + DAMPING * spread * prior[i]
            for i in range(n)
        ]
    return scores
