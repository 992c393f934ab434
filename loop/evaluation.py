"""Human A/B evaluations and the project leaderboard.

evaluation_create (a write) starts a generation job that samples one response per held-out prompt
from each of two models and makes a pairwise comparison task per prompt, in a random left/right
order. evaluation_results and leaderboard (reads) compute from the stored comparison annotations
that count (a rejected one, or one a reviewer corrected, gives way; annotation.models.ANNOTATION_COUNTS):
the statistics come from training.pipelines.evaluate (pure Python: Wilson intervals, Bradley-Terry).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from itertools import combinations

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.models import ANNOTATION_COUNTS, Annotation, Project, Response, Task, TaskResponse
from annotation.roles import Action, project_ids_for
from training.models import Evaluation, GenerationJob, ModelVersion
from training.pipelines import evaluate as stats

from . import generation

ELO_SCALE = 400 / math.log(10)  # a Bradley-Terry logit of 1 is ~174 Elo points
ELO_BASE = 1000
BOOTSTRAP_CACHE_SECONDS = 3600


# Writes ------------------------------------------------------------------------------------------


def evaluation_create(
    *, project: Project, model_a: ModelVersion, model_b: ModelVersion, prompt_count: int | None = None,
    prompt_ids: list[int] | None = None, created_by: AbstractBaseUser | None, temperature: float = 0.7,
    top_p: float = 0.95, max_new_tokens: int = 48, seed: int = 0,
) -> Evaluation:
    """Store the evaluation and its prompts, and queue its generation job (one response per prompt per model).

    With prompt_count the prompts are held out: ones no task has used yet come first.
    """
    # Whether created_by may train here is generation_create's check, inside the same transaction.
    generation._check_model(model_a, project=project, field="model_a")
    generation._check_model(model_b, project=project, field="model_b")
    if model_a.pk == model_b.pk:
        raise InvalidInput("model_b must differ from model_a.", field="model_b")
    seed = generation._number(seed, field="seed", kind=int, low=0, high=2**31 - 1)
    chosen = generation.prompts_select(
        project=project, prompt_ids=prompt_ids, prompt_count=prompt_count, seed=seed, held_out=True
    )
    with transaction.atomic():
        evaluation = Evaluation.objects.create(project=project, model_a=model_a, model_b=model_b, created_by=created_by)
        evaluation.prompts.set(chosen)
        generation.generation_create(
            project=project, model_version=model_a, k=1, temperature=temperature, top_p=top_p,
            max_new_tokens=max_new_tokens, prompt_ids=chosen, created_by=created_by, evaluation=evaluation, seed=seed,
        )
    return evaluation


# Reads -------------------------------------------------------------------------------------------


def evaluation_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Evaluation]:
    if not user.is_authenticated:
        return Evaluation.objects.none()
    return (
        Evaluation.objects.filter(project_id__in=project_ids_for(user=user, action=Action.TRAIN))
        .select_related("project", "model_a", "model_b", "created_by")
        .order_by("-created_at", "-id")
    )


def evaluation_get_for_user(*, user: AbstractBaseUser, evaluation_id: int) -> Evaluation:
    evaluation_id = as_id(evaluation_id)
    evaluation = evaluation_list_for_user(user=user).filter(pk=evaluation_id).first() if evaluation_id else None
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


def ranking_outcomes(ranking: list, all_bad: bool, shown: list[int]) -> list[tuple[int, int, float]]:
    """(i, j, score of i) for every pair of shown responses: 1 i ranked above j, 0 below, 0.5 tied.

    A ranking of K gives its K-choose-2 pairs; responses in one group are tied. An "all bad" with no
    ranking ties everything: the labeler preferred none.
    """
    place: dict[int, int] = {}
    for index, group in enumerate(ranking or []):
        for response_id in group if isinstance(group, list) else [group]:
            place[response_id] = index
    if not place:
        if not all_bad:
            return []
        place = {response_id: 0 for response_id in shown}
    ids = [r for r in shown if r in place]
    out = []
    for i, j in combinations(ids, 2):
        out.append((i, j, 1.0 if place[i] < place[j] else 0.0 if place[i] > place[j] else 0.5))
    return out


def _evaluation_tasks(evaluation: Evaluation) -> QuerySet[Task]:
    return Task.objects.filter(project_id=evaluation.project_id, metadata__evaluation=evaluation.pk)


def evaluation_results(*, evaluation: Evaluation) -> dict:
    """Wins, losses and ties of model A over model B in the stored annotations, the win rate (ties
    count half) and its 95% Wilson interval. Skips count for nothing."""
    tasks = _evaluation_tasks(evaluation)
    task_ids = list(tasks.values_list("pk", flat=True))
    side: dict[int, str] = {}
    shown: dict[int, list[int]] = defaultdict(list)
    rows = TaskResponse.objects.filter(task_id__in=task_ids).order_by("task_id", "position")
    for task_id, response_id, model_id in rows.values_list("task_id", "response_id", "response__model_version_id"):
        shown[task_id].append(response_id)
        if model_id == evaluation.model_a_id:
            side[response_id] = "a"
        elif model_id == evaluation.model_b_id:
            side[response_id] = "b"
    wins = losses = ties = 0
    annotations = (
        Annotation.objects.filter(ANNOTATION_COUNTS, task_id__in=task_ids, kind=Annotation.Kind.COMPARISON)
        .values_list("task_id", "ranking", "all_bad")
    )
    for task_id, ranking, all_bad in annotations:
        for i, j, score in ranking_outcomes(ranking, all_bad, shown[task_id]):
            if {side.get(i), side.get(j)} != {"a", "b"}:
                continue
            score_a = score if side[i] == "a" else 1.0 - score
            if score_a == 1.0:
                wins += 1
            elif score_a == 0.0:
                losses += 1
            else:
                ties += 1
    rate = stats.win_rate(wins, losses, ties)
    challenger = stats.win_rate(losses, wins, ties)  # B's view of the same judgements
    job = GenerationJob.objects.filter(evaluation=evaluation).order_by("-id").first()
    tasks_done = tasks.filter(status=Task.Status.DONE).count()
    complete = evaluation.status == Evaluation.Status.LABELING and task_ids and tasks_done == len(task_ids)
    return {
        "evaluation": evaluation.pk,
        # "complete": every comparison has its labels (a reopened task makes it "labeling" again).
        "status": "complete" if complete else evaluation.status,
        "model_a": {"id": evaluation.model_a_id, "name": evaluation.model_a.name},
        "model_b": {"id": evaluation.model_b_id, "name": evaluation.model_b.name},
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "n": rate["n"],
        "win_rate": rate["win_rate"] if rate["n"] else None,
        "ci_low": rate["low"] if rate["n"] else None,
        "ci_high": rate["high"] if rate["n"] else None,
        # The same, stated for model B, the challenger the form asks for.
        "challenger_win_rate": challenger["win_rate"] if rate["n"] else None,
        "challenger_ci_low": challenger["low"] if rate["n"] else None,
        "challenger_ci_high": challenger["high"] if rate["n"] else None,
        "tasks": len(task_ids),
        "tasks_done": tasks_done,
        "prompts": evaluation.prompts.count(),
        "prompts_skipped": job.prompts_skipped if job else 0,
        "job": job.pk if job else None,
        "job_status": job.status if job else None,
    }


def _elo(score: float | None) -> float | None:
    return round(ELO_BASE + ELO_SCALE * score, 1) if score is not None else None


def _intervals_cached(*, project_id: int, outcomes: list[tuple]) -> dict:
    """Bootstrap intervals of the Bradley-Terry scores, computed once per distinct set of judgements."""
    cells = sorted(Counter(outcomes).items())
    key = f"training:bt-intervals:{project_id}:{hashlib.sha1(repr(cells).encode()).hexdigest()}"
    return cache.get_or_set(key, lambda: stats.bradley_terry_intervals(outcomes), BOOTSTRAP_CACHE_SECONDS)


def leaderboard(*, project: Project) -> list[dict]:
    """Every model version with model-written responses in the project, ranked by a Bradley-Terry fit
    over all comparison annotations between responses of different model versions.

    Each row: rank (None while a model has no comparisons), model, score (the Bradley-Terry logit,
    mean zero), an Elo-scale rating, comparisons, wins, losses, ties. Unrated models come last.
    """
    model_of: dict[int, int] = {}
    shown: dict[int, list[int]] = defaultdict(list)
    rows = (
        TaskResponse.objects.filter(task__project=project, task__kind=Task.Kind.COMPARISON)
        .order_by("task_id", "position")
        .values_list("task_id", "response_id", "response__model_version_id")
    )
    for task_id, response_id, model_id in rows.iterator(chunk_size=5000):
        shown[task_id].append(response_id)
        if model_id is not None:
            model_of[response_id] = model_id
    mixed = {t for t, ids in shown.items() if len({model_of.get(r) for r in ids} - {None}) >= 2}
    outcomes: list[tuple[int, int, float]] = []
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # wins, losses, ties
    annotations = (
        Annotation.objects.filter(ANNOTATION_COUNTS, project=project, kind=Annotation.Kind.COMPARISON)
        .values_list("task_id", "ranking", "all_bad")
    )
    for task_id, ranking, all_bad in annotations.iterator(chunk_size=5000):
        if task_id not in mixed:
            continue
        for i, j, score in ranking_outcomes(ranking, all_bad, shown[task_id]):
            a, b = model_of.get(i), model_of.get(j)
            if a is None or b is None or a == b:
                continue
            outcomes.append((a, b, score))
            slot = 0 if score == 1.0 else 1 if score == 0.0 else 2
            tally[a][slot] += 1
            tally[b][{0: 1, 1: 0, 2: 2}[slot]] += 1
    scores = stats.bradley_terry(outcomes) if outcomes else {}
    intervals = _intervals_cached(project_id=project.pk, outcomes=outcomes) if outcomes else {}
    model_ids = set(
        Response.objects.filter(prompt__project=project, source=Response.Source.MODEL, model_version__isnull=False)
        .values_list("model_version_id", flat=True)
        .distinct()
    ) | set(scores)
    models = {m.pk: m for m in ModelVersion.objects.filter(pk__in=model_ids)}
    table = []
    for model_id, model in models.items():
        wins, losses, ties = tally.get(model_id, [0, 0, 0])
        score = scores.get(model_id)
        table.append({
            "model": {"id": model.pk, "name": model.name, "kind": model.kind, "parent": model.parent_id},
            "score": score,
            "rating": _elo(score),
            # The 95% bootstrap interval of the rating (1,000 refits on resampled judgements).
            "rating_low": _elo(intervals.get(model_id, (None, None))[0]),
            "rating_high": _elo(intervals.get(model_id, (None, None))[1]),
            "comparisons": wins + losses + ties,
            "wins": wins,
            "losses": losses,
            "ties": ties,
        })
    table.sort(key=lambda row: (row["score"] is None, -(row["score"] or 0.0), row["model"]["name"]))
    rank = 0
    for row in table:
        row["rank"] = (rank := rank + 1) if row["score"] is not None else None
    return table
