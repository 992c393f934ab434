"""Reads behind the project dashboard. Every number is an aggregate the database computes.

No function here loops over a project's annotation rows in Python. Counts, means and time
buckets are GROUP BY queries. Medians are PERCENTILE_CONT in the same GROUP BY on PostgreSQL;
elsewhere a window query returns at most two middle rows per group. Agreement streams only the
top choice of multi-judged comparison tasks, in bounded chunks of rows.

Indexes these queries use: task(project_id) (the foreign key index) to find a project's tasks,
and the unique annotation(task_id, labeler_id) to reach their annotations.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from itertools import combinations

from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Avg, Count, F, FloatField, Max, Min, Q, Subquery, Sum, Window
from django.db.models.functions import RowNumber, TruncDay, TruncHour, TruncMinute, TruncWeek
from django.utils import timezone

from .models import ANNOTATION_COUNTS, LABELER_WORK, Annotation, Lease, Membership, Project, Task
from .reviews.selectors import review_counts

AGREEMENT_CHUNK_ROWS = 2000
# The page's numbers are recomputed at most this often per project, however many admins watch.
DASHBOARD_CACHE_SECONDS = 30
MAX_TIMELINE_BUCKETS = 120

_KIND_LABELS = dict(Task.Kind.choices)


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _project_annotations(*, project: Project):
    """The project's annotations that count: rejected ones, and corrected ones (their corrections count), are left out.

    Labels imported from an external source are no labeler's work, so they are left out too; they
    show in the progress figures through their tasks' done.
    """
    return Annotation.objects.filter(ANNOTATION_COUNTS, LABELER_WORK, project=project)


# Progress -------------------------------------------------------------------------------------


def dashboard_progress(*, project: Project) -> dict:
    """Per task kind: tasks done of total, annotations stored of required, skips and live leases.

    Gold tasks count for none of these (annotation/gold.py): they are never done.
    """
    now = timezone.now()
    task_rows = (
        Task.objects.filter(project=project, is_gold=False)
        .values("kind")
        .annotate(
            tasks=Count("id"),
            done_tasks=Count("id", filter=Q(status=Task.Status.DONE)),
            # A task may hold more than it needs if the overlap was lowered: cap it per task.
            annotations=Sum("done"),
            required=Sum("required"),
            scored_tasks=Count("id", filter=Q(reward_margin__isnull=False)),
        )
        .order_by()
    )
    capped = dict(
        Task.objects.filter(project=project, is_gold=False, done__gt=F("required"))
        .values("kind")
        .annotate(extra=Sum(F("done") - F("required")))
        .order_by()
        .values_list("kind", "extra")
    )
    skips = dict(
        _project_annotations(project=project)
        .filter(kind=Annotation.Kind.SKIP, task__is_gold=False)
        .values("task__kind")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("task__kind", "n")
    )
    in_progress = dict(
        Lease.objects.filter(project=project, expires_at__gt=now, task__is_gold=False)
        .values("task__kind")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("task__kind", "n")
    )
    by_kind = {row["kind"]: row for row in task_rows}
    kinds = []
    for kind in Task.Kind.values:
        row = by_kind.get(kind)
        if row is None:
            continue
        stored = (row["annotations"] or 0) - (capped.get(kind) or 0)
        kinds.append(
            {
                "kind": kind,
                "label": _KIND_LABELS[kind],
                "tasks": row["tasks"],
                "done_tasks": row["done_tasks"],
                "tasks_percent": _percent(row["done_tasks"], row["tasks"]),
                "annotations": stored,
                "required": row["required"] or 0,
                "annotations_percent": _percent(stored, row["required"] or 0),
                "skips": skips.get(kind, 0),
                "in_progress": in_progress.get(kind, 0),
                "scored_tasks": row["scored_tasks"],
            }
        )
    tasks = sum(k["tasks"] for k in kinds)
    done_tasks = sum(k["done_tasks"] for k in kinds)
    annotations = sum(k["annotations"] for k in kinds)
    required = sum(k["required"] for k in kinds)
    return {
        "kinds": kinds,
        "tasks": tasks,
        "done_tasks": done_tasks,
        "tasks_percent": _percent(done_tasks, tasks),
        "annotations": annotations,
        "required": required,
        "annotations_percent": _percent(annotations, required),
        "skips": sum(k["skips"] for k in kinds),
        "in_progress": sum(k["in_progress"] for k in kinds),
        "scored_tasks": sum(k["scored_tasks"] for k in kinds),  # by the reward model (active sampling)
    }


# Medians ---------------------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's exact median, computed in the same GROUP BY pass as the counts."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _median_in_aggregate() -> bool:
    return connection.vendor == "postgresql"


def _medians_by_window(*, queryset, group: str) -> dict:
    """The median time_spent_ms per value of `group`, for databases without PERCENTILE_CONT.

    The database numbers each group's rows by time and keeps the middle one (odd count) or two
    (even count); Python only averages those.
    """
    middle = (
        queryset.annotate(
            _rn=Window(RowNumber(), partition_by=[F(group)], order_by=[F("time_spent_ms").asc(), F("id").asc()]),
            _n=Window(Count("id"), partition_by=[F(group)]),
        )
        .filter(Q(_rn=(F("_n") + 1) / 2) | Q(_rn=(F("_n") + 2) / 2))
        .values_list(group, "time_spent_ms")
    )
    values: dict = {}
    for key, ms in middle:
        values.setdefault(key, []).append(ms)
    return {key: sum(ms) / len(ms) for key, ms in values.items()}


def _with_medians(*, rows: list[dict], queryset, group: str, median_filter: Q | None = None) -> list[dict]:
    """Fill row["median_ms"]: already there from Median() on PostgreSQL, else from the window query."""
    if _median_in_aggregate():
        return rows
    source = queryset.filter(median_filter) if median_filter is not None else queryset
    medians = _medians_by_window(queryset=source, group=group)
    for row in rows:
        row["median_ms"] = medians.get(row[group])
    return rows


# Labelers -------------------------------------------------------------------------------------


def dashboard_labelers(*, project: Project) -> list[dict]:
    """One row per labeler who worked on the project: counts, skips, time per task, last active.

    Time statistics cover submitted work only; a skip's time says little about the task.
    """
    annotations = _project_annotations(project=project)
    not_skip = ~Q(kind=Annotation.Kind.SKIP)
    medians = {"median_ms": Median("time_spent_ms", filter=not_skip)} if _median_in_aggregate() else {}
    rows = (
        annotations.values("labeler_id", "labeler__username")
        .annotate(
            **medians,
            annotations=Count("id", filter=not_skip),
            demonstrations=Count("id", filter=Q(kind=Annotation.Kind.DEMONSTRATION)),
            comparisons=Count("id", filter=Q(kind=Annotation.Kind.COMPARISON)),
            skips=Count("id", filter=Q(kind=Annotation.Kind.SKIP)),
            mean_ms=Avg("time_spent_ms", filter=not_skip),
            last_active=Max("created_at"),
        )
        .order_by("-annotations", "labeler__username")
    )
    rows = _with_medians(rows=list(rows), queryset=annotations, group="labeler_id", median_filter=not_skip)
    roles = dict(Membership.objects.filter(project=project).values_list("user_id", "role"))
    return [
        {
            "labeler_id": row["labeler_id"],
            "username": row["labeler__username"],
            "role": roles.get(row["labeler_id"], ""),
            "annotations": row["annotations"],
            "demonstrations": row["demonstrations"],
            "comparisons": row["comparisons"],
            "skips": row["skips"],
            "skip_rate": _percent(row["skips"], row["annotations"] + row["skips"]),
            "mean_ms": round(row["mean_ms"]) if row["mean_ms"] is not None else None,
            "median_ms": round(row["median_ms"]) if row["median_ms"] is not None else None,
            "last_active": row["last_active"],
        }
        for row in rows
    ]


# Time per task --------------------------------------------------------------------------------


def dashboard_time_per_task(*, project: Project) -> list[dict]:
    """Mean and median time_spent_ms of submitted annotations, by task kind."""
    annotations = _project_annotations(project=project).exclude(kind=Annotation.Kind.SKIP)
    medians = {"median_ms": Median("time_spent_ms")} if _median_in_aggregate() else {}
    grouped = annotations.values("kind").annotate(**medians, n=Count("id"), mean_ms=Avg("time_spent_ms")).order_by()
    rows = {row["kind"]: row for row in _with_medians(rows=list(grouped), queryset=annotations, group="kind")}
    result = []
    for kind in Task.Kind.values:
        row = rows.get(kind)
        if row is None:
            continue
        result.append(
            {
                "kind": kind,
                "label": _KIND_LABELS[kind],
                "annotations": row["n"],
                "mean_ms": round(row["mean_ms"]),
                "median_ms": round(row["median_ms"]),
            }
        )
    return result


# Agreement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """Pairwise agreement on the best response of comparison tasks with two or more judgements.

    Two labelers agree on a task when their top groups hold the same responses. A top group
    of several responses is a tie at the top, so a tie agrees only with the same tie: "A and
    B tie for best" and "A is best" disagree. A judgement that ranks nothing (all bad, with no
    ranking) has no top group and is left out. Each task contributes all of its labeler pairs:
    a task judged by three labelers gives three pairs.
    """

    tasks: int
    pairs: int
    agreeing_pairs: int

    @property
    def rate(self) -> float | None:
        return self.agreeing_pairs / self.pairs if self.pairs else None

    @property
    def percent(self) -> float | None:
        return round(100 * self.rate, 1) if self.pairs else None


def _top_group(first) -> frozenset | None:
    """The set of response ids in a ranking's first group (a bare id counts as a group of one)."""
    if first is None or first == []:
        return None
    return frozenset(first if isinstance(first, list) else [first])


def dashboard_agreement(*, project: Project, chunk_size: int = AGREEMENT_CHUNK_ROWS) -> Agreement:
    """Pairwise top-choice agreement over comparison tasks with two or more ranked judgements.

    One query streams the top group (ranking's first element) of each judgement of those tasks
    only, ordered by task, fetched chunk_size rows at a time; one task's groups are held at once.
    """
    judged = (
        _project_annotations(project=project)
        .filter(kind=Annotation.Kind.COMPARISON)
        .exclude(ranking=[])
    )
    multi = judged.values("task_id").annotate(n=Count("id")).filter(n__gte=2).values("task_id")
    tops = (
        judged.filter(task_id__in=Subquery(multi))
        .order_by("task_id", "id")
        .values_list("task_id", "ranking__0")
        .iterator(chunk_size=chunk_size)
    )
    tasks = pairs = agreeing = 0
    current, groups = None, []

    def close(groups: list) -> tuple[int, int, int]:
        groups = [g for g in groups if g is not None]
        if len(groups) < 2:
            return 0, 0, 0
        n_pairs = n_agree = 0
        for first, second in combinations(groups, 2):
            n_pairs += 1
            n_agree += first == second
        return 1, n_pairs, n_agree

    for task_id, top in tops:
        if task_id != current:
            t, p, a = close(groups)
            tasks, pairs, agreeing = tasks + t, pairs + p, agreeing + a
            current, groups = task_id, []
        groups.append(_top_group(top))
    t, p, a = close(groups)
    return Agreement(tasks=tasks + t, pairs=pairs + p, agreeing_pairs=agreeing + a)


# Reward model and humans ------------------------------------------------------------------------


def dashboard_reward_agreement(*, project: Project) -> dict:
    """How often labelers agree with the reward model, on comparisons of tasks it scored.

    Each such annotation stored at submit time (annotation.edits.reward_agreement) whether the
    reward model's best response is in the labeler's top group, and how many of the ranking's
    ordered pairs the scores order the same way. Here they are summed: in total, and per bucket of
    timeline_buckets for the chart, in UTC, buckets without labels left
    empty (null) so the line shows gaps rather than fake zeros. All bad judgements without a
    ranking are left out, as are labels made before their task was scored.
    """
    judged = _project_annotations(project=project).filter(
        kind=Annotation.Kind.COMPARISON, reward_top_agrees__isnull=False
    )
    sums = {
        "annotations": Count("id"),
        "top_agreeing": Count("id", filter=Q(reward_top_agrees=True)),
        "pairs": Sum("reward_pairs"),
        "pairs_agreeing": Sum("reward_pairs_agreeing"),
    }
    total = judged.aggregate(**sums, first=Min("created_at"), last=Max("created_at"))
    n, pairs = total["annotations"], total["pairs"] or 0
    result = {
        "annotations": n,
        "top_agreeing": total["top_agreeing"],
        "top_percent": _percent(total["top_agreeing"], n) if n else None,
        "pairs": pairs,
        "pairs_agreeing": total["pairs_agreeing"] or 0,
        "pairs_percent": _percent(total["pairs_agreeing"] or 0, pairs) if pairs else None,
        "timeline": {"unit": "hour", "labels": [], "top_percent": [], "pairs_percent": [], "annotations": []},
    }
    if not n:
        return result
    unit, step, fmt, trunc, start, end = timeline_buckets(total["first"], total["last"])
    rows = judged.filter(created_at__gte=start).annotate(bucket=trunc).values("bucket").annotate(**sums).order_by("bucket")
    buckets = {row["bucket"].astimezone(dt_timezone.utc): row for row in rows}
    timeline = result["timeline"]
    timeline["unit"] = unit
    moment = start
    while moment <= end:
        row = buckets.get(moment)
        timeline["labels"].append(moment.strftime(fmt))
        timeline["annotations"].append(row["annotations"] if row else 0)
        timeline["top_percent"].append(_percent(row["top_agreeing"], row["annotations"]) if row else None)
        timeline["pairs_percent"].append(
            _percent(row["pairs_agreeing"] or 0, row["pairs"]) if row and row["pairs"] else None
        )
        moment += step
    return result


# Timeline -------------------------------------------------------------------------------------


# Bucket sizes, finest first: the finest that covers the work's span in MAX_TIMELINE_BUCKETS buckets
# wins, so a first hour of labels reads per minute and a year per week (the chart reads at any scale).
TIMELINE_UNITS = [
    # (unit, bucket, label format, truncation)
    ("minute", timedelta(minutes=1), "%H:%M", TruncMinute),
    ("hour", timedelta(hours=1), "%b %d %H:00", TruncHour),
    ("day", timedelta(days=1), "%b %d", TruncDay),
    ("week", timedelta(weeks=1), "week of %b %d %Y", TruncWeek),
]


def _bucket_floor(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(dt_timezone.utc).replace(second=0, microsecond=0)
    if unit == "minute":
        return moment
    moment = moment.replace(minute=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    return moment - timedelta(days=moment.weekday()) if unit == "week" else moment


def timeline_buckets(first: datetime, last: datetime) -> tuple[str, timedelta, str, object, datetime, datetime]:
    """(unit, bucket, label format, truncation of created_at, first bucket, last bucket) for work from first to last."""
    for unit, step, fmt, trunc in TIMELINE_UNITS:
        if _bucket_floor(last, unit) - _bucket_floor(first, unit) < step * MAX_TIMELINE_BUCKETS or unit == "week":
            break
    end = _bucket_floor(last, unit)
    start = max(_bucket_floor(first, unit), end - step * (MAX_TIMELINE_BUCKETS - 1))
    return unit, step, fmt, trunc("created_at", tzinfo=dt_timezone.utc), start, end


def dashboard_timeline(*, project: Project) -> dict:
    """Submitted annotations and skips per minute, hour, day or week (timeline_buckets picks by the span).

    Buckets are in UTC. Buckets without work are filled with zeros, so the chart's x axis is
    true time. Only the most recent MAX_TIMELINE_BUCKETS buckets are returned.
    """
    annotations = _project_annotations(project=project)
    span = annotations.aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return {"unit": "hour", "labels": [], "annotations": [], "skips": [], "total": 0}
    unit, step, fmt, trunc, start, end = timeline_buckets(span["first"], span["last"])
    rows = (
        annotations.filter(created_at__gte=start)
        .annotate(bucket=trunc)
        .values("bucket")
        .annotate(
            annotations=Count("id", filter=~Q(kind=Annotation.Kind.SKIP)),
            skips=Count("id", filter=Q(kind=Annotation.Kind.SKIP)),
        )
        .order_by("bucket")
    )
    counts = {row["bucket"].astimezone(dt_timezone.utc): (row["annotations"], row["skips"]) for row in rows}
    labels, done, skipped = [], [], []
    moment = start
    while moment <= end:
        n, s = counts.get(moment, (0, 0))
        labels.append(moment.strftime(fmt))
        done.append(n)
        skipped.append(s)
        moment += step
    return {"unit": unit, "labels": labels, "annotations": done, "skips": skipped, "total": sum(done)}


# Everything -----------------------------------------------------------------------------------


def dashboard_get_cached(*, project: Project, max_age: int = DASHBOARD_CACHE_SECONDS) -> dict:
    """dashboard_get, shared through the cache for max_age seconds (stamped with computed_at)."""
    return cache.get_or_set(f"dashboard:{project.pk}", lambda: dashboard_get(project=project), max_age)


def dashboard_get(*, project: Project) -> dict:
    """All the numbers the dashboard page shows, plus the compact series its charts draw."""
    labelers = dashboard_labelers(project=project)
    agreement = dashboard_agreement(project=project)
    timeline = dashboard_timeline(project=project)
    reward_agreement = dashboard_reward_agreement(project=project)
    progress = dashboard_progress(project=project)
    reward_agreement["scored_tasks"] = progress["scored_tasks"]
    return {
        "progress": progress,
        "labelers": labelers,
        "time_per_task": dashboard_time_per_task(project=project),
        "agreement": agreement,
        "timeline": timeline,
        "reward_agreement": reward_agreement,
        "members": Membership.objects.filter(project=project).count(),
        "reviews": review_counts(project=project),
        "computed_at": timezone.now(),
        "chart_data": {
            "labelers": {
                "names": [row["username"] for row in labelers],
                "annotations": [row["annotations"] for row in labelers],
                "skips": [row["skips"] for row in labelers],
            },
            "timeline": timeline,
            "reward_agreement": reward_agreement["timeline"],
        },
    }


# Label quality --------------------------------------------------------------------------------


def dashboard_quality(*, project: Project) -> dict:
    """The quality section: the last report of annotation/reliability, read from the cache, never computed here."""
    from .reliability.display import quality_section

    return quality_section(project_id=project.pk)


# Members and display helpers ------------------------------------------------------------------


def membership_list(*, project: Project) -> list[dict]:
    """The project's members with their role and how much work each has stored, admins first."""
    work = dict(
        _project_annotations(project=project)
        .exclude(kind=Annotation.Kind.SKIP)
        .values("labeler_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("labeler_id", "n")
    )
    members = (
        Membership.objects.filter(project=project)
        .select_related("user")
        .order_by("role", "user__username")
    )
    return [
        {
            "user_id": m.user_id,
            "username": m.user.get_username(),
            "role": m.role,
            "joined": m.created_at,
            "annotations": work.get(m.user_id, 0),
        }
        for m in members
    ]


def duration_display(ms: float | None) -> str:
    """A time span for people: 850 ms, 12.4 s, 3 min 05 s."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{round(ms)} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
