"""Regenerate the bundled pretraining text for the `tiny` base model.

    python -m training.pipelines.data.make_corpus

Writes, next to this file:
- corpus.txt: plain English, one short paragraph per line (simple generated sentences and
  a few hand-written paragraphs).
- dialogues.jsonl: {"messages": [...]} chats (questions and answers, arithmetic, counting,
  and the synthetic task of synthetic.py with responses of every mood).

Everything is generated here from small word lists, with a fixed seed: no downloads.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from training.pipelines import synthetic

HERE = Path(__file__).resolve().parent

HANDWRITTEN = [
    "The village sat at the edge of a wide green valley. In the morning the farmers walked "
    "to their fields, and in the evening they came home to eat bread and soup with their families.",
    "A good teacher listens before she speaks. She asks simple questions, waits for the answer, "
    "and helps each child take one more small step.",
    "The river runs from the hills to the sea. In spring it is fast and loud, and in summer it "
    "is slow and warm, and children swim in the shallow water near the bridge.",
    "Cats sleep for most of the day. They wake up when they are hungry, stretch their legs, "
    "and walk slowly to the kitchen to ask for food.",
    "When it rains in the city, people open their umbrellas and walk a little faster. The "
    "streets shine, the buses are full, and the cafes smell of coffee.",
    "To bake bread you need flour, water, salt and yeast. Mix them, let the dough rest, shape "
    "it, and bake it in a hot oven until the crust is brown.",
    "The old library has tall windows and long wooden tables. Students read there in silence, "
    "and the librarian knows where every book belongs.",
    "Birds build their nests in spring. They carry small sticks and soft grass in their beaks, "
    "and soon the eggs hatch and the young birds call for food.",
    "A train left the station at nine in the morning. It crossed the river, passed the farms, "
    "and reached the coast before noon.",
    "Friends help each other. When one is sad, the others listen, and when one is happy, they "
    "all laugh together.",
]

NOUNS = ["cat", "dog", "bird", "child", "teacher", "farmer", "river", "tree", "house", "car",
         "boat", "book", "garden", "city", "friend", "baker", "doctor", "student", "horse", "fish"]
PLACES = ["the park", "the market", "the school", "the kitchen", "the station", "the forest",
          "the beach", "the library", "the village", "the hill"]
VERBS_PAST = ["walked to", "ran to", "looked at", "waited near", "sang in", "slept in",
              "played in", "worked at", "smiled at", "painted"]
ADJS = synthetic.POSITIVE + synthetic.NEGATIVE + synthetic.NEUTRAL
TIMES = ["In the morning", "At noon", "In the evening", "Yesterday", "Last week", "Every day",
         "On Sunday", "After lunch"]

COLORS = {"the sky": "blue", "grass": "green", "snow": "white", "a banana": "yellow",
          "coal": "black", "a tomato": "red", "an orange": "orange", "the sea": "blue"}
SOUNDS = {"a dog": "barks", "a cat": "meows", "a cow": "moos", "a duck": "quacks",
          "a lion": "roars", "a bird": "sings", "a horse": "neighs", "a sheep": "bleats"}
OPPOSITES = {"hot": "cold", "big": "small", "happy": "sad", "fast": "slow", "light": "dark",
             "old": "young", "up": "down", "good": "bad", "open": "closed", "early": "late"}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten"]


def sentence(rng: random.Random) -> str:
    a, b = rng.sample(NOUNS, 2)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{rng.choice(TIMES)} the {rng.choice(ADJS)} {a} {rng.choice(VERBS_PAST)} {rng.choice(PLACES)}."
    if kind == 1:
        return f"The {a} and the {b} were {rng.choice(ADJS)}."
    if kind == 2:
        return f"{rng.choice(TIMES)} a {b} saw a {rng.choice(ADJS)} {a} near {rng.choice(PLACES)}."
    return synthetic.make_response(rng, rng.choice(synthetic.TOPICS), rng.choice([1, 0, -1]))


def qa(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(6)
    if kind == 0:
        thing, color = rng.choice(list(COLORS.items()))
        return f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is {color}."
    if kind == 1:
        animal, sound = rng.choice(list(SOUNDS.items()))
        return f"What sound does {animal} make?", f"{animal[0].upper() + animal[1:]} {sound}."
    if kind == 2:
        word, opposite = rng.choice(list(OPPOSITES.items()))
        return f"What is the opposite of {word}?", f"The opposite of {word} is {opposite}."
    if kind == 3:
        x, y = rng.randrange(10), rng.randrange(10)
        if rng.random() < 0.5:
            return f"What is {x} plus {y}?", f"{x} plus {y} is {x + y}."
        x, y = max(x, y), min(x, y)
        return f"What is {x} minus {y}?", f"{x} minus {y} is {x - y}."
    if kind == 4:
        word = rng.choice(NOUNS)
        n = rng.randrange(2, 5)
        return (f"Repeat the word {word} {NUMBER_WORDS[n]} times.", " ".join([word] * n) + ".")
    n = rng.randrange(1, 8)
    return f"Count to {NUMBER_WORDS[n]}.", ", ".join(NUMBER_WORDS[1:n + 1]) + "."


def main(seed: int = 1234) -> None:
    rng = random.Random(seed)
    lines = list(HANDWRITTEN)
    for _ in range(900):
        lines.append(" ".join(sentence(rng) for _ in range(rng.randrange(2, 5))))
    (HERE / "corpus.txt").write_text("\n".join(lines) + "\n")

    dialogues = []
    for _ in range(800):
        q, a = qa(rng)
        dialogues.append({"messages": [{"role": "user", "content": q},
                                       {"role": "assistant", "content": a}]})
    for _ in range(800):  # the synthetic task, every mood, so later training can shift it
        prompt = synthetic.make_prompt(rng)
        answer = synthetic.make_response(rng, synthetic.topic_of(prompt), rng.choice([1, 0, -1]))
        dialogues.append({"messages": prompt + [{"role": "assistant", "content": answer}]})
    rng.shuffle(dialogues)
    with open(HERE / "dialogues.jsonl", "w") as f:
        for row in dialogues:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
