"""Anthropic HH-RLHF: two transcripts per row, the chosen one and the rejected one.

    {"chosen": "\\n\\nHuman: What is a prime?\\n\\nAssistant: A number with two divisors.",
     "rejected": "\\n\\nHuman: What is a prime?\\n\\nAssistant: An even number."}

Each transcript is a sequence of "\\n\\nHuman: " and "\\n\\nAssistant: " turns. The turns the two
share are the prompt (a multi-turn chat ending with the human's), and their last turns, the
assistant's, are the two responses: a comparison labelled chosen over rejected. Transcripts that
part before their last turn are rejected; a row whose two answers are the same text is left out
with a note (the public set has a few). Other keys become the prompt's metadata.
"""

from __future__ import annotations

import re

from .base import Item, LineError, extra_metadata, per_object, text_of
from .chats import split_pair
from .pairs import pair_item

NAME = "hh-rlhf"
SOURCE = "hh-rlhf"

_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def matches(obj: dict) -> bool:
    chosen = obj.get("chosen")
    return "prompt" not in obj and isinstance(chosen, str) and chosen.lstrip(" ").startswith(("\n\nHuman:", "Human:"))


def turns(transcript: str, name: str) -> list[dict]:
    """A transcript's turns as messages; text before the first turn marker is an error."""
    if transcript.startswith("Human:"):
        transcript = "\n\n" + transcript
    parts = _TURN.split(transcript)
    if parts[0].strip():
        raise LineError(f'{name} must start with "\\n\\nHuman: "; it starts with {parts[0][:30]!r}')
    return [{"role": _ROLE[role], "content": text} for role, text in zip(parts[1::2], parts[2::2])]


def convert(obj: dict) -> Item:
    for key in ("chosen", "rejected"):
        if key not in obj:
            raise LineError(f"an HH-RLHF row needs chosen and rejected; {key} is missing")
        text_of(obj[key], key)
    prompt, chosen, rejected = split_pair(turns(obj["chosen"], "chosen"), turns(obj["rejected"], "rejected"))
    native: dict = {}
    if "id" in obj:
        native["id"] = obj["id"]
    extra = extra_metadata(obj, used=("chosen", "rejected", "id"))
    if extra:
        native["metadata"] = extra
    return pair_item(prompt=prompt, chosen=chosen.strip(), rejected=rejected.strip(), **native)


read = per_object(convert)
