"""An evaluation's battle log: one row per judged comparison, in the shape arena statistics read.

The fields are those of FastChat's cleaned battle files (what its Elo and Bradley-Terry scripts read):
`model_a` and `model_b` are the models as the labeler saw them, left and right (so position bias can be
measured), `winner` is "model_a", "model_b", "tie" or "tie (bothbad)" (a tie, or no preference,
with the labeler's "all bad" flag), `judge` is the labeler's pseudonym or "external:<source>" for an
imported label, `tstamp` the annotation's time in unix seconds, `question_id` the prompt's id in the
project and `task_id` the comparison task. `anony` is true: labelers never see which model wrote what.
Only annotations that count are logged (a rejected one, or one a reviewer corrected, gives way), and a
skip judges nothing. Rows come in annotation id order, read a chunk at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from annotation.exporters import labeler_pseudonym
from annotation.models import ANNOTATION_COUNTS, Annotation, TaskResponse
from training.models import Evaluation

from .evaluation import _evaluation_tasks, ranking_outcomes

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
BATTLE_FORMATS = ("jsonl", "json")
CHUNK = 2000


def evaluation_battles(*, evaluation: Evaluation) -> Iterator[dict]:
    task_ids = list(_evaluation_tasks(evaluation).values_list("pk", flat=True))
    sides: dict[int, list[tuple[int, str]]] = {}
    rows = (
        TaskResponse.objects.filter(task_id__in=task_ids).order_by("task_id", "position")
        .values_list("task_id", "response_id", "response__model_version__name", "task__prompt__external_id")
    )
    question: dict[int, str] = {}
    for task_id, response_id, model_name, external_id in rows:
        sides.setdefault(task_id, []).append((response_id, model_name))
        question[task_id] = external_id
    annotations = (
        Annotation.objects.filter(ANNOTATION_COUNTS, task_id__in=task_ids, kind=Annotation.Kind.COMPARISON)
        .order_by("id")
        .values_list("task_id", "ranking", "all_bad", "labeler_id", "external_source", "created_at")
    )
    for task_id, ranking, all_bad, labeler_id, source, created_at in annotations.iterator(chunk_size=CHUNK):
        shown = sides.get(task_id, [])
        if len(shown) != 2 or None in (shown[0][1], shown[1][1]):
            continue
        (left, model_a), (right, model_b) = shown
        outcome = next((score for i, j, score in ranking_outcomes(ranking, all_bad, [left, right])), None)
        if outcome is None:
            continue
        winner = "model_a" if outcome == 1.0 else "model_b" if outcome == 0.0 else (
            "tie (bothbad)" if all_bad else "tie")
        yield {
            "question_id": question[task_id],
            "task_id": task_id,
            "model_a": model_a,
            "model_b": model_b,
            "winner": winner,
            "judge": labeler_pseudonym(labeler_id) if labeler_id is not None else f"external:{source}",
            "turn": 1,
            "anony": True,
            "tstamp": round(created_at.timestamp(), 3),
            "evaluation": evaluation.pk,
        }


def battle_chunks(*, evaluation: Evaluation, fmt: str) -> Iterator[str]:
    """The battle log as JSON lines, or as one JSON array (FastChat's clean_battle files), streamed."""
    if fmt == "jsonl":
        return (json.dumps(row, ensure_ascii=False) + "\n" for row in evaluation_battles(evaluation=evaluation))
    return _json_array(evaluation)


def _json_array(evaluation: Evaluation) -> Iterator[str]:
    yield "["
    for index, row in enumerate(evaluation_battles(evaluation=evaluation)):
        yield ("," if index else "") + "\n  " + json.dumps(row, ensure_ascii=False)
    yield "\n]\n"
