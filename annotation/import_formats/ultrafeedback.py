"""UltraFeedback, raw and binarized.

Raw (openbmb/UltraFeedback): an instruction and the completions of several models, each rated
per aspect (helpfulness, honesty, instruction following, truthfulness: "Rating" 1 to 5) and overall.

    {"source": "evol_instruct", "instruction": "Name a prime.",
     "completions": [{"model": "m1", "response": "7", "fine-grained_score": 4.5, "overall_score": 8,
                      "annotations": {"helpfulness": {"Rating": "5", "Rationale": "..."}, ...}}, ...]}

becomes a comparison of the completions ranked by score, best first, equal scores tied. The score
is "fine-grained_score" (the mean of the aspect ratings), else the mean of the numeric aspect
ratings, else "overall_score"; a row where a completion has none is a comparison without a label.
The models and scores are kept in the prompt's metadata under "ultrafeedback".

Binarized (HuggingFaceH4/ultrafeedback_binarized): a prompt and the chosen and rejected chats,

    {"prompt": "Name a prime.", "prompt_id": "ab12", "chosen": [{user}, {assistant}],
     "rejected": [{user}, {assistant}], "score_chosen": 8.0, "score_rejected": 5.0}

becomes a comparison labelled chosen over rejected (a tie when the scores are equal); prompt_id is the id.
"""

from __future__ import annotations

import math

from .base import Item, Label, LineError, per_object, text_of
from .chats import messages_of, split_pair
from .pairs import pair_item

NAME = "ultrafeedback"
SOURCE = "ultrafeedback"


def matches(obj: dict) -> bool:
    return ("instruction" in obj and "completions" in obj) or "score_chosen" in obj or "score_rejected" in obj


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _score(completion: dict) -> float | None:
    score = _number(completion.get("fine-grained_score"))
    if score is not None:
        return score
    annotations = completion.get("annotations")
    if isinstance(annotations, dict):
        ratings = [
            _number(aspect.get("Rating")) for aspect in annotations.values() if isinstance(aspect, dict)
        ]
        ratings = [r for r in ratings if r is not None]
        if ratings:
            return sum(ratings) / len(ratings)
    return _number(completion.get("overall_score"))


def _raw(obj: dict) -> Item:
    instruction = text_of(obj["instruction"], "instruction")
    completions = obj["completions"]
    if not isinstance(completions, list):
        raise LineError("completions must be a list of {model, response, annotations} objects")
    responses, scores, models = [], [], []
    for i, completion in enumerate(completions):
        if not isinstance(completion, dict) or "response" not in completion:
            raise LineError(f"completions[{i}] must be an object with a response")
        responses.append(text_of(completion["response"], f"completions[{i}].response"))
        scores.append(_score(completion))
        models.append(completion.get("model", ""))
    metadata = {"ultrafeedback": {"source": obj.get("source", ""), "models": models, "scores": scores}}
    native: dict = {"prompt": instruction, "metadata": metadata}
    if "id" in obj:
        native["id"] = obj["id"]
    if len(responses) < 2:
        return Item(line=0, obj=native)  # nothing to compare: a prompt for demonstrations
    native["responses"] = responses
    if any(score is None for score in scores):
        return Item(line=0, obj=native)
    levels = sorted(set(scores), reverse=True)
    ranking = [[i for i, score in enumerate(scores) if score == level] for level in levels]
    return Item(line=0, obj=native, labels=[Label(ranking=ranking)])  # one group: all tied


def _binarized(obj: dict) -> Item:
    for key in ("chosen", "rejected"):
        if key not in obj:
            raise LineError(f"a binarized UltraFeedback row needs chosen and rejected; {key} is missing")
    prompt, chosen, rejected = split_pair(
        messages_of(obj["chosen"], "chosen"), messages_of(obj["rejected"], "rejected")
    )
    if "prompt" in obj and prompt[-1]["content"] != text_of(obj["prompt"], "prompt"):
        raise LineError("prompt differs from the user's turn in chosen and rejected")
    score_chosen, score_rejected = _number(obj.get("score_chosen")), _number(obj.get("score_rejected"))
    metadata = {"ultrafeedback": {"score_chosen": score_chosen, "score_rejected": score_rejected}}
    native: dict = {"metadata": metadata}
    if obj.get("prompt_id") is not None:
        native["id"] = obj["prompt_id"]
    tie = score_chosen is not None and score_chosen == score_rejected
    return pair_item(prompt=prompt, chosen=chosen, rejected=rejected, tie=tie, **native)


def convert(obj: dict) -> Item:
    if "instruction" in obj and "completions" in obj:
        return _raw(obj)
    if "chosen" in obj or "rejected" in obj:
        return _binarized(obj)
    raise LineError("an UltraFeedback row needs instruction and completions (raw) or chosen and rejected (binarized)")


read = per_object(convert)
