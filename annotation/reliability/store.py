"""The cached quality report of each project, and the requests that recompute it.

Keys in Django's cache (Redis in production):
- quality:<project id>          the last report, kept until the next one replaces it;
- quality:<project id>:queued   set when a recompute is queued, so a second click queues nothing;
- quality:<project id>:running  a lock, so two workers never compute one project at once.

Readers (the dashboard and the API) call quality_status, one cache round trip and no query.
"""

from datetime import datetime

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from annotation.models import Annotation, Project

from .config import REPORT_VERSION

# A run is stopped after this long (the Celery task's limits follow it); the lock outlives it a little.
RUN_SECONDS = 600
QUALITY_TASK = "annotation.tasks.quality_compute_project"  # the Celery task that calls quality_run
QUEUED_SECONDS = 3600  # a queued request that no worker took is forgotten after this long


def _key(project_id: int, suffix: str = "") -> str:
    return f"quality:{project_id}{suffix}"


def quality_status(*, project_id: int) -> dict:
    """{"report": the last report or None, "queued_at": when a recompute was queued, or None}."""
    found = cache.get_many([_key(project_id), _key(project_id, ":queued")])
    report = found.get(_key(project_id))
    if report is not None and report.get("version") != REPORT_VERSION:
        report = None  # written by an older release; the next run replaces it
    return {"report": report, "queued_at": found.get(_key(project_id, ":queued"))}


def quality_report_set(*, report: dict) -> None:
    cache.set(_key(report["project_id"]), report, timeout=None)


def quality_recompute_request(*, project_id: int) -> bool:
    """Queue a recompute of the project unless one is queued already; True when this call queued it.

    The task is sent after the surrounding transaction commits, so a worker never misses its rows.
    """
    if not cache.add(_key(project_id, ":queued"), timezone.now().isoformat(), timeout=QUEUED_SECONDS):
        return False
    # By its name: annotation/tasks.py defines the task and imports this module, not the other way round.
    transaction.on_commit(lambda: current_app.tasks[QUALITY_TASK].delay(project_id))
    return True


def quality_run(*, project_id: int) -> str:
    """Compute and cache the project's report, unless another worker is at it. Returns what happened."""
    from .compute import quality_compute

    if not Project.objects.filter(pk=project_id).exists():
        cache.delete(_key(project_id, ":queued"))
        return "missing"
    if not cache.add(_key(project_id, ":running"), timezone.now().isoformat(), timeout=RUN_SECONDS + 120):
        return "busy"
    try:
        quality_report_set(report=quality_compute(project_id=project_id))
    finally:
        cache.delete_many([_key(project_id, ":running"), _key(project_id, ":queued")])
    return "computed"


def projects_due() -> list[int]:
    """Projects with work newer than their last report (or work and no report): one index probe each."""
    project_ids = list(Project.objects.order_by("pk").values_list("pk", flat=True))
    reports = cache.get_many([_key(pk) for pk in project_ids])
    due = []
    for pk in project_ids:
        report = reports.get(_key(pk))
        work = Annotation.objects.filter(project_id=pk)
        if report is not None:
            work = work.filter(created_at__gt=datetime.fromisoformat(report["data_as_of"]))
        if work.exists():
            due.append(pk)
    return due


def quality_refresh_all() -> int:
    """Queue a recompute of every project whose work changed since its last report; return how many."""
    return sum(quality_recompute_request(project_id=pk) for pk in projects_due())


def labeler_competence(*, project_id: int) -> dict[int, float] | None:
    """Each labeler's Dawid-Skene competence (0..1) in the project's last report; None when there is no report.

    A labeler missing from the dict has no figure: they judged no comparison the models could use.
    """
    report = quality_status(project_id=project_id)["report"]
    if report is None:
        return None
    return {
        int(row["labeler_id"]): float(row["dawid_skene"])
        for row in report.get("labelers", [])
        if row.get("dawid_skene") is not None
    }
