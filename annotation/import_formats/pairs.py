"""A labelled pair as a native comparison line: the responses chosen first, and its label."""

from __future__ import annotations

from .base import Item, Label, PassLine

SAME_TEXT = "chosen and rejected are the same text, so there is nothing to compare; left out"


def pair_item(*, prompt: list[dict], chosen: str, rejected: str, tie: bool = False, **native) -> Item:
    """A comparison of chosen and rejected, labelled chosen first (or a tie); an equal pair is passed over."""
    if chosen == rejected:
        raise PassLine(SAME_TEXT)
    ranking = [[0, 1]] if tie else [[0], [1]]
    obj = {"messages": prompt, "responses": [chosen, rejected], **native}
    return Item(line=0, obj=obj, labels=[Label(ranking=ranking)])
