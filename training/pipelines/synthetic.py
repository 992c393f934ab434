"""The synthetic task: write a sentence about a topic, with a mood.

Prompts look like "Write a happy sentence about cats." The gold preference, checkable
by code, is simple on purpose so that the tiny model can learn it and a tiny reward model
can separate it: a response earns a point per positive word, loses a point per negative
word, earns half a point for naming the topic, loses two for an answer under three words, and
loses a little for rambling.

The platform uses this for simulated labelers (gold_compare gives a winner and a strength,
as a human comparison would) and for gold-score evaluation of trained models.

Pure Python; imports nothing heavy.
"""
from __future__ import annotations

import random
import re

TOPICS = [
    "cats", "dogs", "the sea", "the garden", "the city", "music", "the rain", "the sun",
    "books", "the forest", "bread", "the river", "birds", "the morning", "winter",
    "the train", "friends", "the park", "coffee", "the moon",
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

PROMPT_TEMPLATES = [
    "Write a happy sentence about {topic}.",
    "Say something nice about {topic}.",
    "Write one cheerful sentence about {topic}.",
    "Tell me something good about {topic}.",
]

_WORD = re.compile(r"[a-z]+")
_POS = set(POSITIVE)
_NEG = set(NEGATIVE)
MIN_WORDS = 3
MAX_GOOD_WORDS = 16


def topic_of(prompt) -> str:
    """The topic named in a prompt (a string or a list of chat messages), or ''."""
    text = prompt_text(prompt).lower()
    for topic in sorted(TOPICS, key=len, reverse=True):
        if topic in text:
            return topic
    return ""


def prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def make_prompt(rng: random.Random) -> list[dict]:
    topic = rng.choice(TOPICS)
    return [{"role": "user", "content": rng.choice(PROMPT_TEMPLATES).format(topic=topic)}]


def make_prompts(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    return [make_prompt(rng) for _ in range(n)]


def make_response(rng: random.Random, topic: str, mood: int) -> str:
    """A sentence about `topic`. mood > 0: positive words, < 0: negative, 0: neutral."""
    pool = POSITIVE if mood > 0 else NEGATIVE if mood < 0 else NEUTRAL
    n_adj = rng.choice([1, 2, 2, 3]) if mood else 1
    adjs = rng.sample(pool, n_adj)
    subject = subject_of(topic)
    adj_text = adjs[0] if n_adj == 1 else ", ".join(adjs[:-1]) + " and " + adjs[-1]
    sentence = f"{subject} {rng.choice(VERBS)} {adj_text}"
    if rng.random() < 0.5:
        sentence += " " + rng.choice(FILLERS)
    return sentence + "."


def gold_score(prompt, response: str) -> float:
    """Positive words minus negative words, +0.5 for naming the topic, -2 for fewer than 3 words
    (empty or cut off), -0.1 per word past 16."""
    words = _WORD.findall(response.lower())
    score = float(sum(w in _POS for w in words) - sum(w in _NEG for w in words))
    topic = topic_of(prompt)
    if topic and topic.split()[-1] in words:
        score += 0.5
    if len(words) < MIN_WORDS:
        score -= 2.0
    if len(words) > MAX_GOOD_WORDS:
        score -= 0.1 * (len(words) - MAX_GOOD_WORDS)
    return score


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
