"""TRL's dataset rows: preference (paired), unpaired preference, and prompt-only.

    {"prompt": "Name a prime.", "chosen": "7", "rejected": "8"}                       standard
    {"prompt": [{"role": "user", "content": "Hi"}],
     "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [...]}     conversational
    {"chosen": [...full chat...], "rejected": [...full chat...]}                     implicit prompt
    {"prompt": "Name a prime.", "completion": "7", "label": true}                    unpaired
    {"prompt": [{"role": "user", "content": "Hi"}]}                                  prompt-only

A pair becomes a comparison labelled chosen over rejected. With an implicit prompt the shared
turns are the prompt (for strings: the shared text, cut where TRL's extract_prompt cuts it).
Unpaired rows in a row with the same prompt become one comparison: desirable completions (label
true) tied above undesirable ones; a prompt with one desirable completion alone becomes a
demonstration labelled with it, and one with only undesirable completions an unlabelled
demonstration task (the completions kept in its metadata). Other keys become the prompt's metadata.
"""

from __future__ import annotations

from collections.abc import Iterator

from .base import Item, Label, LineError, Passed, PassLine, Records, Rejected, extra_metadata
from .chats import completion_of, messages_of, split_pair
from .pairs import pair_item

NAME = "trl"
SOURCE = "trl"


def matches(obj: dict) -> bool:
    if "chosen" in obj and "rejected" in obj:
        return True
    if "completion" in obj and "label" in obj:
        return True
    return isinstance(obj.get("prompt"), list) and set(obj) <= {"prompt", "id", "metadata"}


def _prompt(value) -> list[dict]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages = messages_of(value, "prompt")
    if messages[-1]["role"] != "user":
        raise LineError("prompt must end with the user's message")
    return messages


def _native(obj: dict, used: tuple[str, ...]) -> dict:
    native: dict = {}
    if "id" in obj:
        native["id"] = obj["id"]
    metadata = obj.get("metadata", {})
    extra = extra_metadata(obj, used=(*used, "id", "metadata"))
    if not isinstance(metadata, dict):
        native["metadata"] = metadata  # the importer names it: metadata must be a JSON object
    elif extra or metadata:
        native["metadata"] = {**metadata, **extra}
    return native


def _cut_strings(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Implicit prompt, strings: the shared text is the prompt, cut before a space as TRL does."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared and chosen[shared - 1 : shared] == " ":
        shared -= 1
    if not chosen[:shared].strip():
        raise LineError("chosen and rejected share no prompt: give \"prompt\" too")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def pair(obj: dict) -> Item:
    chosen, rejected = obj["chosen"], obj["rejected"]
    native = _native(obj, ("prompt", "chosen", "rejected"))
    if "prompt" in obj:
        return pair_item(
            prompt=_prompt(obj["prompt"]), chosen=completion_of(chosen, "chosen"),
            rejected=completion_of(rejected, "rejected"), **native,
        )
    if isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = _cut_strings(chosen, rejected)
        return pair_item(prompt=[{"role": "user", "content": prompt}], chosen=chosen, rejected=rejected, **native)
    prompt, chosen, rejected = split_pair(messages_of(chosen, "chosen"), messages_of(rejected, "rejected"))
    return pair_item(prompt=prompt, chosen=chosen, rejected=rejected, **native)


def _unpaired_group(group: list[tuple[int, dict]]) -> Item:
    """Rows in a row with the same prompt: one task (see the module's doc), its line the first row's."""
    first = group[0][1]
    good, bad = [], []
    for _, obj in group:
        (good if obj["label"] else bad).append(completion_of(obj["completion"], "completion"))
    native = _native(first, ("prompt", "completion", "label"))
    messages = _prompt(first["prompt"])
    if good and bad:
        responses = good + bad
        ranking = [list(range(len(good))), list(range(len(good), len(responses)))]
        obj = {"messages": messages, "responses": responses, **native}
        return Item(line=0, obj=obj, labels=[Label(ranking=ranking)])
    if len(good) == 1:
        return Item(line=0, obj={"messages": messages, **native}, labels=[Label(text=good[0])])
    key = "desirable_completions" if good else "undesirable_completions"
    native["metadata"] = {**native.get("metadata", {}), key: good or bad}
    return Item(line=0, obj={"messages": messages, **native})


def read(records: Records) -> Iterator:
    group: list[tuple[int, dict]] = []

    def flush():
        try:
            item = _unpaired_group(group)
        except LineError as exc:
            return Rejected(group[0][0], str(exc))
        item.line = group[0][0]
        return item

    for line, obj in records:
        if not isinstance(obj, dict):
            yield Rejected(line, f"the line is not a JSON object but a JSON {type(obj).__name__}")
            continue
        unpaired = "completion" in obj and "label" in obj
        if group and not (unpaired and obj.get("prompt") == group[0][1].get("prompt")):
            yield flush()
            group = []
        try:
            if unpaired:
                if not isinstance(obj["label"], bool):
                    raise LineError("label must be true (desirable) or false (undesirable)")
                if "prompt" not in obj:
                    raise LineError("an unpaired row needs its prompt")
                group.append((line, obj))
            elif "chosen" in obj or "rejected" in obj:
                for key in ("chosen", "rejected"):
                    if key not in obj:
                        raise LineError(f"a preference row needs both chosen and rejected; {key} is missing")
                item = pair(obj)
                item.line = line
                yield item
            elif "prompt" in obj:
                native = _native(obj, ("prompt",))
                yield Item(line=line, obj={"messages": _prompt(obj["prompt"]), **native})
            else:
                raise LineError("a TRL row needs prompt, chosen and rejected, or completion and label")
        except LineError as exc:
            yield Rejected(line, str(exc))
        except PassLine as exc:
            yield Passed(line, str(exc))
    if group:
        yield flush()

