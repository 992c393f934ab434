"""OpenAssistant message trees (oasst1 and oasst2 JSONL exports), flat or nested.

Flat: one message per line, the messages of a tree on consecutive lines (as the export writes them),

    {"message_id": "m1", "parent_id": null, "message_tree_id": "m1", "role": "prompter", "text": "Hi"}
    {"message_id": "m2", "parent_id": "m1", "message_tree_id": "m1", "role": "assistant", "text": "Hello!", "rank": 0}

Nested: one tree per line, {"message_tree_id": "m1", "prompt": {message..., "replies": [{message...}, ...]}}.

Every prompter message with assistant replies becomes a task whose prompt is the conversation
from the tree's root down to it (prompter: user) and whose id is its message_id. Two or more
replies make a comparison labelled with the tree's ranking (each reply's "rank", 0 the best); if a
reply has no rank the comparison has no label. One reply makes a demonstration labelled with it.
Deleted messages (and what hangs below them) and prompter messages without replies are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from .base import Item, Label, LineError, Records, Rejected, text_of

NAME = "oasst"
SOURCE = "oasst"

ROLE = {"prompter": "user", "assistant": "assistant"}


def matches(obj: dict) -> bool:
    return "message_tree_id" in obj or ("message_id" in obj and obj.get("role") in ROLE)


def _message(obj, where: str) -> dict:
    if not isinstance(obj, dict):
        raise LineError(f"{where} must be a message object")
    for key in ("message_id", "role", "text"):
        if key not in obj:
            raise LineError(f"{where} has no {key}")
    if not isinstance(obj["role"], str) or obj["role"] not in ROLE:
        raise LineError(f"{where}.role must be prompter or assistant, not {json.dumps(obj['role'])[:30]}")
    text_of(obj["text"], f"{where}.text")
    for key in ("message_id", "parent_id", "message_tree_id"):
        value = obj.get(key)
        required = value is not None or key == "message_id"
        if required and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise LineError(f"{where}.{key} must be a string")
    rank = obj.get("rank")
    if isinstance(rank, float) and rank.is_integer():
        obj = {**obj, "rank": int(rank)}  # exports written through pandas give 0.0 for 0
    elif rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
        raise LineError(f"{where}.rank must be a whole number (0 is the best) or null")
    return obj


def tasks_of_tree(root: dict, children: dict[str, list[dict]]) -> Iterator[Item]:
    """The tasks of one tree, root first (depth first, replies in the file's order); iterative, for deep trees."""
    stack: list[tuple[dict, list[dict]]] = [(root, [])]
    while stack:
        message, above = stack.pop()
        if message.get("deleted"):
            continue
        path = above + [{"role": ROLE[message["role"]], "content": message["text"]}]
        replies = [r for r in children.get(message["message_id"], []) if not r.get("deleted")]
        if message["role"] == "prompter":
            answers = [r for r in replies if r["role"] == "assistant"]
            if answers:
                yield _task(message, path, answers)
        for reply in reversed(replies):
            stack.append((reply, path))


def _task(message: dict, path: list[dict], answers: list[dict]) -> Item:
    line = message.get("_line", 0)  # a flat export's line of the prompter message
    native: dict = {"id": str(message["message_id"]), "messages": path}
    lang = message.get("lang")
    if lang:
        native["metadata"] = {"lang": lang, "message_tree_id": message.get("message_tree_id", "")}
    if len(answers) == 1:
        return Item(line=line, obj=native, labels=[Label(text=answers[0]["text"])])
    native["responses"] = [a["text"] for a in answers]
    ranks = [a.get("rank") for a in answers]
    if any(rank is None for rank in ranks):
        return Item(line=line, obj=native)
    ranking = [[i for i, rank in enumerate(ranks) if rank == level] for level in sorted(set(ranks))]
    return Item(line=line, obj=native, labels=[Label(ranking=ranking)])


def _nested(obj: dict) -> Iterator[Item]:
    """A tree row's tasks; its replies are flattened into a children map first."""
    root = _message(obj["prompt"], "prompt")
    children: dict[str, list[dict]] = {}
    stack = [(root, "prompt")]
    while stack:
        message, where = stack.pop()
        replies = message.get("replies") or []
        if not isinstance(replies, list):
            raise LineError(f"{where}.replies must be a list")
        for i, reply in enumerate(replies):
            reply = _message(reply, f"{where}.replies[{i}]")
            reply.setdefault("message_tree_id", obj.get("message_tree_id", ""))
            children.setdefault(message["message_id"], []).append(reply)
            stack.append((reply, f"{where}.replies[{i}]"))
    root.setdefault("message_tree_id", obj.get("message_tree_id", ""))
    return tasks_of_tree(root, children)


def read(records: Records) -> Iterator:
    """Nested rows one by one; flat rows a tree at a time (memory holds one tree)."""
    tree_id, roots, children = None, [], {}
    finished: set = set()  # the ids of the trees read, to catch a tree that is not on consecutive lines

    def flush():
        return [item for root in roots for item in tasks_of_tree(root, children)]

    for line, obj in records:
        try:
            if not isinstance(obj, dict):
                raise LineError(f"the line is not a JSON object but a JSON {type(obj).__name__}")
            if isinstance(obj.get("prompt"), dict):
                for item in _nested(obj):
                    item.line = line
                    yield item
                continue
            message = {**_message(obj, "the message"), "_line": line}
            root_id = message["message_id"] if message.get("parent_id") is None else None
            this_tree = message.get("message_tree_id", root_id)
            if this_tree is None:
                raise LineError("a reply needs its message_tree_id")
            if this_tree != tree_id:
                if this_tree in finished:
                    raise LineError(
                        f"tree '{str(this_tree)[:50]}' went on earlier: a tree's messages must be on consecutive lines"
                    )
                yield from flush()
                if tree_id is not None:
                    finished.add(tree_id)
                tree_id, roots, children = this_tree, [], {}
            if message.get("parent_id") is None:
                roots.append(message)
            else:
                children.setdefault(message["parent_id"], []).append(message)
        except LineError as exc:
            yield Rejected(line, str(exc))
    yield from flush()

