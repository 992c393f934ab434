"""Checks of what labelers send. Each error names the field; nothing is stored before they pass."""

import uuid

from .errors import InvalidInput
from .export_pairs import STRENGTH_MARGIN
from .models import Annotation, Task

MAX_TEXT_CHARS = 50_000
MAX_RATIONALE_CHARS = 10_000


def _text(data: dict, name: str, *, required: bool, limit: int) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string.", field=name)
    if required and not value.strip():
        raise InvalidInput(f"{name} must not be empty.", field=name)
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters.", field=name)
    return value


def clean_client_id(client_id) -> uuid.UUID:
    """The UUID a client made for one submission (a labeler's or a reviewer's): what makes it idempotent."""
    if client_id in (None, ""):
        raise InvalidInput("client_id is required: a UUID made by the client.", field="client_id")
    try:
        return uuid.UUID(str(client_id))
    except ValueError:
        raise InvalidInput("client_id must be a UUID.", field="client_id") from None


def clean_skip_reason(reason) -> str:
    return _text({"reason": reason}, "reason", required=True, limit=MAX_RATIONALE_CHARS).strip()


def clean_annotation_payload(*, kind: str, data: dict, shown_response_ids: list[int]) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.")
    if kind == Task.Kind.DEMONSTRATION:
        return {"kind": Annotation.Kind.DEMONSTRATION, "text": _text(data, "text", required=True, limit=MAX_TEXT_CHARS)}
    return _clean_comparison(data, shown_response_ids)


def _clean_comparison(data: dict, shown: list[int]) -> dict:
    all_bad = data.get("all_bad", False)
    if not isinstance(all_bad, bool):
        raise InvalidInput("all_bad must be true or false.", field="all_bad")
    ranking = _clean_ranking(data.get("ranking"), shown, allow_empty=all_bad)
    strength = data.get("strength") or ""
    if len(shown) == 2 and ranking:
        tied = len(ranking) == 1
        if tied:
            strength = Annotation.Strength.TIE
        elif strength not in STRENGTH_MARGIN:
            choices = ", ".join(STRENGTH_MARGIN)
            raise InvalidInput(f"strength must be one of {choices} when one response wins.", field="strength")
    elif strength and strength not in Annotation.Strength.values:
        raise InvalidInput(f"strength must be one of {', '.join(Annotation.Strength.values)}.", field="strength")
    fields = {
        "kind": Annotation.Kind.COMPARISON,
        "ranking": ranking,
        "strength": strength,
        "flags": _clean_flags(data.get("flags") or {}, shown),
        "all_bad": all_bad,
        "rationale": _text(data, "rationale", required=False, limit=MAX_RATIONALE_CHARS),
    }
    edit = _clean_edit(data.get("edit"), ranking)
    if edit is not None:
        fields["edit"] = edit  # annotation.edits turns it into a Response inside the submit transaction
    return fields


def _clean_edit(value, ranking: list[list[int]]) -> dict | None:
    """The optional rewrite of the best response: {"response_id": a top-ranked id, "text": "..."}.

    Whether the text differs from the original is checked where the original is read (annotation.edits).
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput('edit must be an object: {"response_id": <the best response>, "text": "..."}.', field="edit")
    unknown = sorted(set(value) - {"response_id", "text"})
    if unknown:
        raise InvalidInput(f"edit: unknown key '{unknown[0]}'; use response_id and text.", field="edit")
    response_id = value.get("response_id")
    if not isinstance(response_id, int) or isinstance(response_id, bool):
        raise InvalidInput("edit.response_id must be the id of the response you ranked best.", field="edit.response_id")
    if not ranking:
        raise InvalidInput("Rank the responses before editing the best one.", field="edit.response_id")
    if response_id not in ranking[0]:
        raise InvalidInput(
            f"edit.response_id must be a top-ranked response ({', '.join(map(str, sorted(ranking[0])))}), "
            f"not {response_id}.",
            field="edit.response_id",
        )
    text = value.get("text")
    if not isinstance(text, str):
        raise InvalidInput("edit.text must be a string: your improved response.", field="edit.text")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"edit.text is longer than {MAX_TEXT_CHARS} characters.", field="edit.text")
    if not text.strip():
        raise InvalidInput("edit.text must not be empty: write your improved response, or leave the edit out.",
                           field="edit.text")
    return {"response_id": response_id, "text": text}


def _clean_ranking(value, shown: list[int], *, allow_empty: bool) -> list[list[int]]:
    """A ranking is a list of groups of response ids, best first. A group of several is a tie."""
    if value in (None, []) and allow_empty:
        return []
    if not isinstance(value, list) or not value:
        raise InvalidInput("ranking must be a non-empty list of groups of response ids, best first.", field="ranking")
    groups, seen = [], []
    for group in value:
        group = group if isinstance(group, list) else [group]
        if not group or not all(isinstance(i, int) and not isinstance(i, bool) for i in group):
            raise InvalidInput("Each ranking group must be a non-empty list of response ids.", field="ranking")
        groups.append(list(group))
        seen.extend(group)
    if sorted(seen) != sorted(shown):
        raise InvalidInput(
            f"ranking must place each shown response exactly once: {sorted(shown)}.", field="ranking"
        )
    return groups


def _clean_flags(value, shown: list[int]) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput("flags must map response ids to lists of flags.", field="flags")
    cleaned = {}
    for key, flags in value.items():
        try:
            response_id = int(key)
        except (TypeError, ValueError):
            raise InvalidInput(f"flags: '{key}' is not a response id.", field="flags") from None
        if response_id not in shown:
            raise InvalidInput(f"flags: response {response_id} is not shown by this task.", field="flags")
        if not isinstance(flags, list) or any(f not in Annotation.Flag.values for f in flags):
            raise InvalidInput(f"flags: use only {', '.join(Annotation.Flag.values)}.", field="flags")
        if flags:
            cleaned[str(response_id)] = sorted(set(flags))
    return cleaned
