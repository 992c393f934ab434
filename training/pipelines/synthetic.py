"""The synthetic task: write a sentence about a topic, with a mood.

Prompts look like "Write a happy sentence about cats." The gold preference, checkable by code,
encodes what a careful reader would prefer, and nothing a policy could farm:

- warmth: +1 for each *distinct* positive word, counted up to two (a third adds nothing), -1.5
  for each negative word;
- a sentence, not a list: -1 for every adjective past the second (stacked adjectives), -1 for
  every repeated content word ("happy happy"), -1 without a verb, -1.5 when it does not end with
  "." or "!" (cut off), -3 under three words (empty or broken), -0.5 for each word that is not a
  word of the task's language (a garbled token; at most -2), -0.25 per word past 16;
- on topic and specific: +0.75 for naming the prompt's topic, +0.5 for a detail ("in the evening").

So the best answers ("The garden feels calm and lovely in the evening.") come in many forms and
none of them repeats, stacks or rambles; two good answers usually tie.

Prompts come in two disjoint splits: TRAIN_TEMPLATES x TRAIN_TOPICS (what the loop imports, labels
and trains on) and HELDOUT_TEMPLATES x HELDOUT_TOPICS (templates and topics no training set ever
contains), for out-of-distribution evaluation. tests/training/test_synthetic_gold.py proves the
splits disjoint.

The platform uses this for simulated labelers (gold_compare gives a winner and a strength,
as a human comparison would) and for gold-score evaluation of trained models.

Pure Python; imports nothing heavy.
"""
from __future__ import annotations

import functools
import random
import re
from pathlib import Path

TOPICS = [
    "cats", "dogs", "the sea", "the garden", "the city", "music", "the rain", "the sun",
    "books", "the forest", "bread", "the river", "birds", "the morning", "winter",
    "the train", "friends", "the park", "coffee", "the moon",
]
# More topics for the loop's training split only. A reward model that saw twenty topics can learn
# those twenty words rather than "names the prompt's topic"; with sixty it has to learn the match,
# which is what carries over to a topic it never saw.
MORE_TOPICS = [
    "the lake", "flowers", "tea", "the stars", "the snow", "summer", "autumn", "the mountains", "the bridge",
    "the sky", "trees", "the wind", "the clouds", "apples", "the road", "the island", "the valley", "the boat",
    "the piano", "the bell", "the house", "the window", "the fire", "the candle", "the meadow",
    "the desert", "the field", "the song", "the orchard", "the stream", "the harbor", "the lamp", "the tower",
    "the painting", "the puppy", "the kitten", "the bicycle", "the castle", "the festival", "the letter",
]
TRAIN_TOPICS = TOPICS + MORE_TOPICS
# Never in a training prompt: the out-of-distribution evaluation's topics.
HELDOUT_TOPICS = [
    "the beach", "the library", "the kitchen", "the market", "the village", "the school", "horses", "the hill",
]

POSITIVE = [
    "happy", "good", "great", "lovely", "bright", "kind", "warm", "wonderful", "joyful",
    "nice", "calm", "beautiful", "sweet", "cheerful", "glad", "gentle",
]
NEGATIVE = [
    "sad", "bad", "awful", "dark", "cold", "angry", "terrible", "gloomy", "ugly",
    "bitter", "lonely", "grim", "nasty", "dull", "tired", "broken",
]
NEUTRAL = [
    "small", "old", "new", "quiet", "busy", "tall", "long", "round", "green", "blue",
]
VERBS = ["is", "feels", "looks", "seems", "was", "will be"]
FILLERS = ["today", "again", "in the evening", "at night", "all day", "this year", "as always"]
# Details a careful reader counts as specific (FILLERS but "again" and "as always", which say nothing).
DETAILS = ["today", "in the evening", "at night", "all day", "this year", "in the morning", "in spring",
           "after the rain", "on sunday"]

# The population experiment's templates (and the first of the loop's training templates).
PROMPT_TEMPLATES = [
    "Write a happy sentence about {topic}.",
    "Say something nice about {topic}.",
    "Write one cheerful sentence about {topic}.",
    "Tell me something good about {topic}.",
]
# The loop's training templates: many wordings of the request, so that what a model learns about
# the prompt is "a sentence about the topic it names", not these few sentences.
TRAIN_TEMPLATES = PROMPT_TEMPLATES + [
    "Write a nice sentence about {topic}.",
    "Say one good thing about {topic}.",
    "I want a happy sentence about {topic}.",
    "Please write something sweet about {topic}.",
    "What is lovely about {topic}?",
    "Make a cheerful remark about {topic}.",
    "Write a glad sentence on {topic}.",
    "Tell me one joyful thing about {topic}.",
]
HELDOUT_TEMPLATES = [
    "Give me a warm line about {topic}.",
    "Describe {topic} in a kind way.",
    "Share one bright thought about {topic}.",
    "Could you praise {topic} in a sentence?",
]
# "basic": the first templates and topics, a subset of "train", which the row helpers below draw by
# default so that the tests and benches built on them keep their prompts; the loop asks for "train".
SPLITS = {"train": (TRAIN_TEMPLATES, TRAIN_TOPICS), "heldout": (HELDOUT_TEMPLATES, HELDOUT_TOPICS),
          "basic": (PROMPT_TEMPLATES, TOPICS)}

# The forms a gold writer (and so the SFT model) uses; {adjs} is one to three adjectives.
FORMS = [
    "{Subject} {verb} {adjs}{detail}.",
    "{Subject} {verb} {adjs}{detail}.",
    "I think {topic} {verb} {adjs}{detail}.",
    "There is something {adjs} about {topic}{detail}.",
    "{Subject} always {verb} {adjs}{detail}.",
    "It {verb} {adjs}{detail}.",
]

_WORD = re.compile(r"[a-z]+")
_POS = set(POSITIVE)
_NEG = set(NEGATIVE)
_ADJ = _POS | _NEG | set(NEUTRAL)
VERB_WORDS = {"is", "are", "was", "were", "be", "feels", "feel", "looks", "look", "seems", "seem", "makes", "make",
              "think", "love", "loves", "has", "have", "sings", "shines", "smells", "sounds"}
# Words that repeat in any natural sentence; repeating anything else counts against an answer.
FUNCTION_WORDS = {"the", "a", "an", "and", "is", "are", "was", "in", "at", "of", "to", "it", "i", "me", "this",
                  "that", "about", "there", "on", "with", "for", "my", "its", "all"}
MIN_WORDS = 3
MAX_GOOD_WORDS = 16
DATA_DIR = Path(__file__).resolve().parent / "data"


def _split(split: str) -> tuple[list[str], list[str]]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return SPLITS[split]


def topic_of(prompt) -> str:
    """The topic (of either split) named in a prompt (a string or a list of chat messages), or ''."""
    text = prompt_text(prompt).lower()
    for topic in sorted(TRAIN_TOPICS + HELDOUT_TOPICS, key=len, reverse=True):
        if re.search(rf"\b{re.escape(topic)}\b", text):
            return topic
    return ""


def prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def make_prompt(rng: random.Random, split: str = "basic") -> list[dict]:
    templates, topics = _split(split)
    topic = rng.choice(topics)
    return [{"role": "user", "content": rng.choice(templates).format(topic=topic)}]


def make_prompts(n: int, seed: int = 0, split: str = "basic") -> list[list[dict]]:
    rng = random.Random(seed)
    return [make_prompt(rng, split) for _ in range(n)]


def prompt_texts(split: str) -> set[str]:
    """Every prompt text a split can produce (templates x topics)."""
    templates, topics = _split(split)
    return {t.format(topic=topic) for t in templates for topic in topics}


def make_response(rng: random.Random, topic: str, mood: int) -> str:
    """A sentence about `topic` in one of several forms. mood > 0: positive words, < 0: negative, 0: neutral.

    Positive answers vary as a gold writer's do: one to three adjectives, a detail or not, the topic
    named (mostly) or not, so that they differ in gold score and a trained model can improve on them.
    """
    pool = POSITIVE if mood > 0 else NEGATIVE if mood < 0 else NEUTRAL
    n_adj = rng.choice([1, 1, 2, 2, 3]) if mood else 1
    adjs = rng.sample(pool, n_adj)
    adj_text = adjs[0] if n_adj == 1 else ", ".join(adjs[:-1]) + " and " + adjs[-1]
    roll = rng.random()
    detail = " " + rng.choice(DETAILS) if roll < 0.4 else " " + rng.choice(["again", "as always"]) if roll < 0.55 else ""
    form = rng.choice(FORMS)
    return form.format(Subject=subject_of(topic), topic=topic, verb=rng.choice(VERBS), adjs=adj_text, detail=detail)


@functools.lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """The task's language: every word of the bundled corpus and dialogues, the prompts and the word lists."""
    words: set[str] = set()
    for name in ("corpus.txt", "dialogues.jsonl"):
        path = DATA_DIR / name
        if path.exists():
            words.update(_WORD.findall(path.read_text().lower()))
    extra = " ".join(TRAIN_TOPICS + HELDOUT_TOPICS + POSITIVE + NEGATIVE + NEUTRAL + VERBS + FILLERS + DETAILS
                     + TRAIN_TEMPLATES + HELDOUT_TEMPLATES + FORMS + sorted(VERB_WORDS | FUNCTION_WORDS))
    words.update(_WORD.findall(extra.lower()))
    return frozenset(words)


def gold_parts(prompt, response: str) -> dict[str, float]:
    """The gold score's terms (their sum is gold_score), so a report or a test can say why."""
    text = response.strip()
    words = _WORD.findall(text.lower())
    positives = {w for w in words if w in _POS}
    parts = {
        "warmth": float(min(len(positives), 2)),
        "negative": -1.5 * sum(w in _NEG for w in words),
        "stacked": -1.0 * max(0, sum(w in _ADJ for w in words) - 2),
        "repeated": -1.0 * sum(n - 1 for w, n in _counts(words).items() if w not in FUNCTION_WORDS and n > 1),
        "no_verb": 0.0 if any(w in VERB_WORDS for w in words) else -1.0,
        "cut_off": 0.0 if text.endswith((".", "!")) else -1.5,
        "too_short": -3.0 if len(words) < MIN_WORDS else 0.0,
        "garbled": -0.5 * min(4, sum(w not in known_words() for w in words)),
        "rambling": -0.25 * max(0, len(words) - MAX_GOOD_WORDS),
        "topic": 0.0,
        "detail": 0.0,
    }
    topic = topic_of(prompt)
    if topic and topic.split()[-1] in words:
        parts["topic"] = 0.75
    lowered = " ".join(words)
    if any(re.search(rf"\b{d}\b", lowered) for d in DETAILS):
        parts["detail"] = 0.5
    return parts


def _counts(words: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return counts


def gold_score(prompt, response: str) -> float:
    """What a careful reader would prefer, as a number; see the module's docstring and gold_parts."""
    return sum(gold_parts(prompt, response).values())


def gold_prefers(prompt, a: str, b: str) -> bool:
    """True when the gold function strictly prefers response a over response b."""
    return gold_score(prompt, a) > gold_score(prompt, b)


STRENGTHS = [(2.0, "much_better", 3.0), (1.0, "better", 2.0), (0.25, "slightly_better", 1.0)]


def gold_compare(prompt, a: str, b: str) -> dict:
    """A simulated labeler's comparison: {"winner": "a"|"b"|None, "strength": str, "margin": float}."""
    diff = gold_score(prompt, a) - gold_score(prompt, b)
    for threshold, name, margin in STRENGTHS:
        if abs(diff) >= threshold:
            return {"winner": "a" if diff > 0 else "b", "strength": name, "margin": margin}
    return {"winner": None, "strength": "tie", "margin": 0.0}


def sft_rows(n: int, seed: int = 0) -> list[dict]:
    """Demonstrations in the platform's `sft` export format: positive answers."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        prompt = make_prompt(rng)
        answer = make_response(rng, topic_of(prompt), +1)
        rows.append({"messages": prompt + [{"role": "assistant", "content": answer}]})
    return rows


def candidate(rng: random.Random, topic: str) -> str:
    """A response a model might write: positive, neutral, negative, or (sometimes) degenerate."""
    kind = rng.choice(["pos", "neutral", "neg", "pos", "neutral", "neg", "degenerate"])
    if kind == "degenerate":  # so that reward models learn that empty or cut-off answers are bad
        return rng.choice(["", ".", "The", subject_of(topic), rng.choice(NEGATIVE) + "."])
    return make_response(rng, topic, {"pos": 1, "neutral": 0, "neg": -1}[kind])


def subject_of(topic: str) -> str:
    return topic[0].upper() + topic[1:]


def good_answer(rng: random.Random, topic: str) -> str:
    """One of the best answers: two distinct positive words, the topic named, a detail, in some form."""
    first, second = rng.sample(POSITIVE, 2)
    form = rng.choice(FORMS[:5])  # every form but "It ...", which does not name the topic
    return form.format(Subject=subject_of(topic), topic=topic, verb=rng.choice(VERBS), adjs=f"{first} and {second}",
                       detail=" " + rng.choice(DETAILS))


ADVERSARIAL_KINDS = ("empty", "repeated", "stacked", "cut_off", "word_list")


def adversarial(rng: random.Random, topic: str, kind: str) -> str:
    """An answer that games a naive scorer: empty, a repeated word, stacked adjectives, cut off, a bare list."""
    subject = subject_of(topic)
    if kind == "empty":
        return rng.choice(["", ".", " "])
    if kind == "repeated":
        word = rng.choice(POSITIVE)
        return f"{subject} is {' '.join([word] * rng.randint(3, 6))}."
    if kind == "stacked":
        adjs = rng.sample(POSITIVE, rng.randint(4, 6))
        return f"{subject} is {', '.join(adjs[:-1])} and {adjs[-1]}."
    if kind == "cut_off":
        words = good_answer(rng, topic).rstrip(".").split()
        return " ".join(words[:max(2, len(words) // 2)])
    if kind == "word_list":
        return " ".join(rng.sample(POSITIVE, rng.randint(3, 6)))
    raise ValueError(f"kind must be one of {', '.join(ADVERSARIAL_KINDS)}, not {kind!r}")


def adversarial_pairs(n_prompts: int, seed: int = 0, split: str = "heldout") -> list[dict]:
    """For each prompt, a best answer against each adversarial kind: {prompt, good, bad, kind}."""
    rng = random.Random(seed)
    rows = []
    for prompt in make_prompts(n_prompts, seed=seed, split=split):
        topic = topic_of(prompt)
        for kind in ADVERSARIAL_KINDS:
            rows.append({"prompt": prompt, "good": good_answer(rng, topic), "bad": adversarial(rng, topic, kind),
                         "kind": kind})
    return rows


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    """Pairs in the platform's `preference` export format, chosen by the gold function."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        prompt = make_prompt(rng)
        topic = topic_of(prompt)
        a, b = candidate(rng, topic), candidate(rng, topic)
        verdict = gold_compare(prompt, a, b)
        if verdict["winner"] is None:
            continue
        chosen, rejected = (a, b) if verdict["winner"] == "a" else (b, a)
        rows.append({
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "margin": verdict["margin"],
        })
    return rows
