"""Output diversity of a model's samples: distinct-n and self-BLEU. Pure Python, no Django, no torch.

    distinct_n(["a b c", "a b d"], 2)  -> 0.75   (3 distinct bigrams of 4)
    self_bleu(texts)                   -> 0..1   (1: every sample repeats the others)

distinct-n is the share of all word n-grams, pooled over the samples, that are distinct (Li et al.,
2016); it falls when a model says the same thing every time. Self-BLEU (Zhu et al., 2018) scores each
sample as a BLEU hypothesis against all the other samples as references and averages; it rises as
samples copy each other. Here BLEU is up to 4-grams, geometric mean of clipped precisions with add-one
smoothing past unigrams, with the brevity penalty against the closest reference length.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the texts; None when there is no n-gram at all."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else None


def bleu(hypothesis: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU of one tokenised hypothesis against tokenised references (see the module's docstring)."""
    if not hypothesis or not references:
        return 0.0
    log_total = 0.0
    for n in range(1, max_n + 1):
        grams = Counter(ngrams(hypothesis, n))
        total = sum(grams.values())
        best: Counter = Counter()
        for ref in references:
            for gram, count in Counter(ngrams(ref, n)).items():
                if gram in grams and count > best[gram]:
                    best[gram] = count
        matched = sum(min(count, best[gram]) for gram, count in grams.items())
        if n > 1:  # add-one smoothing: a short sentence without a matching 4-gram is not BLEU 0
            matched, total = matched + 1, total + 1
        if matched == 0 or total == 0:
            return 0.0
        log_total += math.log(matched / total) / max_n
    closest = min((abs(len(r) - len(hypothesis)), len(r)) for r in references)[1]
    brevity = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return brevity * math.exp(log_total)


def self_bleu(texts: list[str], max_n: int = 4, limit: int = 200) -> float | None:
    """Mean BLEU of each of the first `limit` samples against all the others; None under two samples."""
    tokens = [words(t) for t in texts[:limit]]
    if len(tokens) < 2:
        return None
    scores = [bleu(tokens[i], tokens[:i] + tokens[i + 1:], max_n) for i in range(len(tokens))]
    return sum(scores) / len(scores)


def distinct_2_in(texts: list[str], vocabulary: frozenset[str]) -> float | None:
    """distinct-2 over the bigrams whose words are all in `vocabulary` (punctuation always is).

    Every misspelt or made-up word ("hppyle") starts two bigrams no other sample has, so plain
    distinct-2 counts garbled output as diversity: a model that stops garbling looks less varied.
    Leaving out the bigrams that touch such a word measures how varied the well-formed text is.
    None when no bigram is left.
    """
    def known(word: str) -> bool:
        return word in vocabulary or not word.isalpha()

    grams = [g for t in texts for g in ngrams(words(t), 2) if known(g[0]) and known(g[1])]
    return len(set(grams)) / len(grams) if grams else None


def diversity(texts: list[str], vocabulary: frozenset[str] | None = None) -> dict:
    """{"samples", "distinct_1", "distinct_2", "self_bleu", "unique_share"} of one model's samples.

    With a vocabulary (the task's words), also "distinct_2_known": distinct_2_in over it.
    """
    out = {
        "samples": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        "unique_share": len(set(texts)) / len(texts) if texts else None,
    }
    if vocabulary is not None:
        out["distinct_2_known"] = distinct_2_in(texts, vocabulary)
    return out
