"""Reads of gold accuracy and qualification: the dashboard's section, the settings page, the API.

Each labeler's accuracy comes from their GoldRecord, whose counts the submit keeps (one row per
labeler, never a scan of annotations), with the 95% Wilson interval from scipy (gold.py). The
whole summary is cached like the dashboard's numbers: computed at most every
DASHBOARD_CACHE_SECONDS per project; re-admitting a labeler or changing the qualification
settings clears it.
"""

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from . import gold
from .dashboard import DASHBOARD_CACHE_SECONDS
from .models import GoldRecord, Membership, Project, Task
from .qualification import GOLD_CACHE_KEY, qualification_on


def gold_summary(*, project: Project) -> dict:
    """Settings, gold task counts, and one row per labeler with a gold record, by username."""
    counts = gold_task_counts(project=project)
    roles = dict(Membership.objects.filter(project=project).values_list("user_id", "role"))
    records = (
        GoldRecord.objects.filter(project=project).select_related("labeler", "readmitted_by")
        .order_by("labeler__username", "id")
    )
    labelers = [_labeler_row(record, roles) for record in records]
    answered = sum(row["answered"] for row in labelers)
    correct = sum(row["correct"] for row in labelers)
    gradable = counts.get(Task.Kind.COMPARISON, 0)
    return {
        "gold_rate": project.gold_rate,
        "gold_training_mode": project.gold_training_mode,
        "qualification_tasks": project.qualification_tasks,
        "qualification_min_accuracy": project.qualification_min_accuracy,
        "gold_tasks": counts,
        # Qualification needs more gold comparisons than the project has: labelers would wait.
        "qualification_short": qualification_on(project) and gradable < project.qualification_tasks,
        "confidence": gold.CONFIDENCE,
        "answered": answered,
        "correct": correct,
        "accuracy": correct / answered if answered else None,
        "labelers": labelers,
        "computed_at": timezone.now(),
    }


def gold_task_counts(*, project: Project) -> dict[str, int]:
    """{kind: gold tasks of that kind}: a count over the partial index of gold tasks."""
    counts = dict(
        Task.objects.filter(project=project, is_gold=True).values("kind").annotate(n=Count("id"))
        .order_by().values_list("kind", "n")
    )
    return {kind: counts.get(kind, 0) for kind in Task.Kind.values}


def _labeler_row(record: GoldRecord, roles: dict) -> dict:
    interval = gold.accuracy_interval(correct=record.gold_correct, answered=record.gold_answered)
    return {
        "labeler_id": record.labeler_id,
        "username": record.labeler.get_username(),
        "role": roles.get(record.labeler_id, ""),  # "" once removed from the project
        "served": record.gold_served,
        "answered": record.gold_answered,
        "correct": record.gold_correct,
        "accuracy": record.gold_correct / record.gold_answered if record.gold_answered else None,
        "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None,
        "qualification": record.status,
        "decided_at": record.decided_at,
        "readmitted_by": record.readmitted_by.get_username() if record.readmitted_by else None,
        "readmitted_at": record.readmitted_at,
    }


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def gold_chart(summary: dict) -> dict:
    """The dashboard chart's series: each labeler's accuracy and interval, in percent."""
    rows = [row for row in summary["labelers"] if row["answered"]]
    return {
        "names": [row["username"] for row in rows],
        "accuracy": [_percent(row["accuracy"]) for row in rows],
        "intervals": [[_percent(row["ci_low"]), _percent(row["ci_high"])] for row in rows],
        "min_accuracy": _percent(summary["qualification_min_accuracy"]) if summary["qualification_tasks"] else None,
    }


def gold_labeler_row(*, project: Project, labeler_id: int) -> dict | None:
    """One labeler's row of gold_summary, read fresh (after a re-admit)."""
    record = GoldRecord.objects.filter(project=project, labeler_id=labeler_id).select_related(
        "labeler", "readmitted_by").first()
    if record is None:
        return None
    roles = dict(Membership.objects.filter(project=project, user_id=labeler_id).values_list("user_id", "role"))
    return _labeler_row(record, roles)


def gold_summary_cached(*, project: Project) -> dict:
    return cache.get_or_set(
        GOLD_CACHE_KEY.format(project_id=project.pk), lambda: gold_summary(project=project), DASHBOARD_CACHE_SECONDS
    )


def qualification_by_member(*, project: Project) -> dict[int, str]:
    """{user id: qualification status} for the members table; members without a record are qualifying."""
    if not qualification_on(project):
        return {}
    stored = dict(GoldRecord.objects.filter(project=project).values_list("labeler_id", "status"))
    members = Membership.objects.filter(project=project).values_list("user_id", flat=True)
    return {user_id: stored.get(user_id, GoldRecord.Status.QUALIFYING) for user_id in members}
