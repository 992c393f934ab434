"""What a comparison's submit stores beyond the ranking: the labeler's edit, and agreement with the reward model.

services._store calls annotation_fields_complete() inside the submit transaction, after its
checks and before it creates the annotation, so everything here commits or rolls back with it.

- Edit to improve. validation._clean_edit has checked the shape ({"response_id", "text"}, the
  response in the top group, a non-empty text within the size limit). Here the original is read
  under the transaction: an edit identical to it (whitespace aside) is rejected, and a good edit
  becomes a Response(source=human, author=labeler, edited_from=original) that the annotation
  links as edited_response. The exports make it a demonstration (sft) and a preference pair of
  the edit over the original (preference).
- Reward-model agreement. On a task the reward model scored (task.reward_margin is set), the
  annotation records whether the reward model's best response is in the labeler's top group and
  how many of the ranking's ordered pairs the scores order the same way. The dashboard then
  sums these by time bucket instead of re-reading rankings. Unscored tasks cost no query.
"""

from django.contrib.auth.models import AbstractBaseUser

from .errors import InvalidInput
from .export_pairs import ranking_pairs
from .models import Annotation, Response, Task, TaskResponse


def annotation_fields_complete(*, task: Task, labeler: AbstractBaseUser, fields: dict) -> None:
    """Turn the cleaned payload's extras into annotation fields (in place). Raises InvalidInput."""
    edit = fields.pop("edit", None)
    if fields.get("kind") != Annotation.Kind.COMPARISON:
        return
    if edit is not None:
        fields["edited_response"] = edit_response_create(task=task, labeler=labeler, edit=edit)
    if task.reward_margin is not None:
        fields.update(reward_agreement(task_id=task.pk, ranking=fields.get("ranking") or []))


def _normalised(text: str) -> str:
    return " ".join(text.split())


def edit_response_create(*, task: Task, labeler: AbstractBaseUser, edit: dict) -> Response:
    """Store the labeler's rewrite of a response the task shows, as a human demonstration."""
    original = (
        Response.objects.filter(pk=edit["response_id"], task_responses__task=task).values_list("text", flat=True).first()
    )
    if original is None:
        raise InvalidInput("edit.response_id is not a response of this task.", field="edit.response_id")
    if _normalised(edit["text"]) == _normalised(original):
        raise InvalidInput(
            "edit.text is identical to the original response: change it, or leave the edit out.", field="edit.text"
        )
    return Response.objects.create(
        prompt_id=task.prompt_id,
        text=edit["text"],
        source=Response.Source.HUMAN,
        author=labeler,
        edited_from_id=edit["response_id"],
    )


def reward_agreement(*, task_id: int, ranking: list[list[int]]) -> dict:
    """Agreement fields of a ranking with the reward scores of the task's responses.

    The top agrees when the highest score among the labeler's top group is the highest score of
    all (so a tie at the reward model's top counts if either tied response is the labeler's best).
    Each ordered pair of the ranking (ties give none) agrees when the better one scores higher.
    Empty when the ranking is empty (all bad) or a ranked response has no score.
    """
    if not ranking:
        return {}
    scores = dict(
        TaskResponse.objects.filter(task_id=task_id, reward_score__isnull=False).values_list(
            "response_id", "reward_score"
        )
    )
    ranked = [rid for group in ranking for rid in group]
    if not ranked or any(rid not in scores for rid in ranked):
        return {}
    best = max(scores[rid] for rid in ranked)
    pairs = ranking_pairs(ranking=ranking)
    return {
        "reward_top_agrees": max(scores[rid] for rid in ranking[0]) >= best,
        "reward_pairs": len(pairs),
        "reward_pairs_agreeing": sum(1 for better, worse, _ in pairs if scores[better] > scores[worse]),
    }

