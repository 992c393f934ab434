"""What the registry, the dashboard and the API show of the reward-model checks."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Project
from training.models import RewardModelCheck

from .labels import project_reward_models
from .rule import MIN_PAIRS, eval_accuracy, stale_verdict


def check_summary(check: RewardModelCheck) -> dict:
    """What the registry, the dashboard and the API show of a check."""
    stale, why = stale_verdict(agreement=check.agreement, pairs=check.pairs, model=check.reward_model)
    if check.computed_at is None:
        verdict = "not computed"
    elif stale:
        verdict = "stale"
    elif check.agreement is None or check.pairs < MIN_PAIRS:
        verdict = "too few labels"
    else:
        verdict = "ok"
    return {
        "reward_model": check.reward_model_id,
        "reward_model_name": check.reward_model.name,
        "project": check.project_id,
        "project_name": check.project.name,
        "status": check.status,
        "message": check.message,
        "policy": check.policy_id,
        "policy_name": check.policy.name if check.policy_id else None,
        "agreement": check.agreement,
        "agreement_percent": round(100 * check.agreement, 1) if check.agreement is not None else None,
        "eval_accuracy": eval_accuracy(check.reward_model),
        "labels": check.labels,
        "pairs": check.pairs,
        "computed_at": check.computed_at,
        "stale": stale,
        "verdict": verdict,
        "hint": why if check.computed_at else "Not computed yet.",
    }


def _checks() -> QuerySet[RewardModelCheck]:
    return RewardModelCheck.objects.select_related("reward_model", "project", "policy")


def reward_checks_for_project(*, project: Project) -> list[dict]:
    """Each reward model of the project with its check (None where it was never checked), for the dashboard."""
    checks = {c.reward_model_id: c for c in _checks().filter(project=project)}
    return [
        {"model": model, "check": check_summary(checks[model.pk]) if model.pk in checks else None}
        for model in project_reward_models(project=project)
    ]


def reward_checks_for_models(*, model_ids: list[int], project_ids) -> dict[int, list[dict]]:
    """{reward model id: [its checks' summaries in these projects]}, for the registry (project_ids: the user's)."""
    found: dict[int, list[dict]] = {}
    for check in _checks().filter(reward_model_id__in=model_ids, project_id__in=project_ids).order_by("project_id"):
        found.setdefault(check.reward_model_id, []).append(check_summary(check))
    return found
