"""Label Studio's JSON export of pairwise and ranking projects: a JSON array of tasks (or one task per line).

Pairwise (the Pairwise tag, toName="answer1,answer2"; "selected" is "left" or "right"):

    [{"id": 7, "data": {"prompt": "Name a prime.", "answer1": "7", "answer2": "8"},
      "annotations": [{"id": 1, "completed_by": 3, "was_cancelled": false,
                       "result": [{"type": "pairwise", "from_name": "comparison", "to_name": "answer1,answer2",
                                   "value": {"selected": "left"}}]}]}]

Ranking (a List of items and the Ranker tag; the ranker's one list holds the item ids, best first):

    {"id": 8, "data": {"prompt": "...", "items": [{"id": "a", "body": "..."}, {"id": "b", "body": "..."}]},
     "annotations": [{"result": [{"type": "ranker", "value": {"ranker": {"rank": ["b", "a"]}}}]}]}

Each task becomes a comparison (its id the task's id); each annotation that is not cancelled and
holds a pairwise or ranker result becomes one of its labels. The prompt is the first of the data
fields prompt, instruction, question, input, text (a string, or a list of messages).
"""

from __future__ import annotations

from .base import Item, Label, LineError, per_object, text_of
from .chats import messages_of

NAME = "label-studio"
SOURCE = "label-studio"

PROMPT_FIELDS = ("prompt", "instruction", "question", "input", "text")
PAIR_FIELDS = (("answer1", "answer2"), ("text1", "text2"), ("response1", "response2"), ("left", "right"),
               ("response_a", "response_b"))
ITEM_TEXT = ("body", "text", "html", "title")


def matches(obj: dict) -> bool:
    return isinstance(obj.get("data"), dict) and ("annotations" in obj or "predictions" in obj)


def _prompt(data: dict, taken: set[str]) -> list[dict]:
    for name in PROMPT_FIELDS:
        if name in data and name not in taken:
            value = data[name]
            if isinstance(value, list):
                return messages_of(value, f"data.{name}")
            return [{"role": "user", "content": text_of(value, f"data.{name}")}]
    raise LineError(f"data has no prompt: give one of {', '.join(PROMPT_FIELDS)}")


def _results(task: dict) -> list[list[dict]]:
    """The result lists of the task's annotations that were not cancelled."""
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise LineError("annotations must be a list")
    kept = []
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("result", []), list):
            raise LineError(f"annotations[{i}] must be an object with a result list")
        if not annotation.get("was_cancelled"):
            kept.append([r for r in annotation.get("result", []) if isinstance(r, dict)])
    return kept


def _pair_fields(data: dict, results: list[list[dict]]) -> tuple[str, str]:
    for result in results:
        for r in result:
            names = str(r.get("to_name", "")).split(",")
            if r.get("type") == "pairwise" and len(names) == 2 and all(n.strip() in data for n in names):
                return names[0].strip(), names[1].strip()
    for pair in PAIR_FIELDS:
        if all(name in data for name in pair):
            return pair
    raise LineError(f"a pairwise task's data needs its two answers, e.g. {' and '.join(PAIR_FIELDS[0])}")


def _pairwise(task: dict, data: dict, results: list[list[dict]]) -> Item:
    left, right = _pair_fields(data, results)
    responses = [text_of(data[left], f"data.{left}"), text_of(data[right], f"data.{right}")]
    labels = []
    for i, result in enumerate(results):
        for r in result:
            if r.get("type") != "pairwise":
                continue
            selected = (r.get("value") or {}).get("selected") if isinstance(r.get("value"), dict) else None
            if selected not in ("left", "right"):
                raise LineError(f"annotations[{i}]: a pairwise value's selected must be left or right")
            labels.append(Label(ranking=[[0], [1]] if selected == "left" else [[1], [0]]))
    native = {"messages": _prompt(data, {left, right}), "responses": responses}
    return Item(line=0, obj=_with_id(task, native), labels=labels)


def _items(data: dict) -> tuple[str, list[str], list[str]]:
    for name, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) and "id" in v for v in value):
            ids, texts = [], []
            for i, item in enumerate(value):
                text = next((item[k] for k in ITEM_TEXT if isinstance(item.get(k), str)), None)
                if text is None:
                    raise LineError(f"data.{name}[{i}] needs its text as body, text, html or title")
                ids.append(str(item["id"]))
                texts.append(text)
            return name, ids, texts
    raise LineError("a ranking task's data needs a list of items, each with an id and a body")


def _ranking(task: dict, data: dict, results: list[list[dict]]) -> Item:
    field, ids, responses = _items(data)
    index = {item_id: i for i, item_id in enumerate(ids)}
    labels = []
    for i, result in enumerate(results):
        for r in result:
            if r.get("type") != "ranker":
                continue
            ranker = (r.get("value") or {}).get("ranker") if isinstance(r.get("value"), dict) else None
            if not isinstance(ranker, dict) or len(ranker) != 1 or not isinstance(next(iter(ranker.values())), list):
                raise LineError(f"annotations[{i}]: a ranker value must hold one list of item ids, best first")
            order = [str(item_id) for item_id in next(iter(ranker.values()))]
            unknown = [item_id for item_id in order if item_id not in index]
            if unknown:
                raise LineError(
                    f"annotations[{i}]: the ranker names item '{unknown[0][:50]}', which data.{field} lacks"
                )
            labels.append(Label(ranking=[[index[item_id]] for item_id in order]))
    native = {"messages": _prompt(data, {field}), "responses": responses}
    return Item(line=0, obj=_with_id(task, native), labels=labels)


def _with_id(task: dict, native: dict) -> dict:
    if task.get("id") is not None:
        native["id"] = task["id"]
    return native


def convert(obj: dict) -> Item:
    data = obj.get("data")
    if not isinstance(data, dict):
        raise LineError("a Label Studio task needs its data object")
    results = _results(obj)
    kinds = {r.get("type") for result in results for r in result}
    if "ranker" in kinds:
        return _ranking(obj, data, results)
    if "pairwise" in kinds or any(all(name in data for name in pair) for pair in PAIR_FIELDS):
        return _pairwise(obj, data, results)
    return _ranking(obj, data, results)


read = per_object(convert)
