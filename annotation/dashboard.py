"""Reads behind the project dashboard. Every number is an aggregate the database computes.

What a page load reads (dashboard_get_cached) never scans a project's tasks or annotations:
progress comes from the rolled-up counters that triggers keep exact in the annotations' own
transactions (models.ProgressCounter) plus the live leases, and everything that needs a pass over
the annotations (labelers, time per task, agreement, timeline, reward-model agreement, and the
few progress figures counters do not hold: skips, scored tasks, the excess of over-full tasks)
is, for a big project, a rollup a Celery task computes (dashboard_figures_refresh) and the cache
keeps. A page that finds the rollup older than DASHBOARD_CACHE_SECONDS queues a refresh and shows
the one it has; with none yet (a new big project, or a flushed cache) it shows progress at once
and says the rest is being computed. A small project (FIGURES_INLINE_ROWS tasks plus annotations,
read from the counters) has its figures computed in the request, a few milliseconds, as before.

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

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.db.models import Avg, Count, F, Max, Min, Q, Subquery, Sum
from django.db.models.functions import TruncDay, TruncHour, TruncMinute, TruncWeek
from django.utils import timezone

from .medians import Median, median_in_aggregate, medians_by_window
from .models import ANNOTATION_COUNTS, LABELER_WORK, Annotation, Lease, Membership, ProgressCounter, Project, Task
from .reviews.selectors import review_counts

AGREEMENT_CHUNK_ROWS = 2000
# The page's numbers are recomputed at most this often per project, however many admins watch.
DASHBOARD_CACHE_SECONDS = 30
MAX_TIMELINE_BUCKETS = 120
# Below this many tasks plus annotations (from the counters), a missing rollup is computed in the request.
FIGURES_INLINE_ROWS = 20_000
# A queued refresh is not queued again for this long (the worker may be busy).
FIGURES_QUEUED_SECONDS = 60
REFRESH_TASK = "annotation.tasks.dashboard_refresh"  # the Celery task that calls dashboard_figures_refresh

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


def dashboard_progress(*, project: Project, extras: dict | None = None) -> dict:
    """Per task kind: tasks done of total, annotations stored of required, skips and live leases.

    Tasks, done tasks, annotations and required come from the rolled-up counters (exact, as of
    the last commit); live leases are counted now (a small table). The figures counters cannot
    hold, per kind, come from `extras` (progress_extras), by default the rollup's. Gold tasks
    count for none of these (annotation/gold.py): they are never done.
    """
    if extras is None:
        extras = _progress_extras_for(project=project)
    counters = {
        row["kind"]: row
        for row in ProgressCounter.objects.filter(project_id=project.pk)
        .values("kind")
        .annotate(tasks=Sum("tasks"), done_tasks=Sum("done_tasks"), annotations=Sum("annotations"),
                  required=Sum("required"))
        .order_by()
    }
    in_progress = dict(
        Lease.objects.filter(project=project, expires_at__gt=timezone.now(), task__is_gold=False)
        .values("task__kind")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("task__kind", "n")
    )
    kinds = []
    for kind in Task.Kind.values:
        row = counters.get(kind)
        if row is None or not row["tasks"]:
            continue
        extra = extras.get(kind, {})
        # A task may hold more than it needs if the overlap was lowered: its excess is taken off.
        stored = (row["annotations"] or 0) - extra.get("excess", 0)
        required = row["required"] or 0
        kinds.append(
            {
                "kind": kind,
                "label": _KIND_LABELS[kind],
                "tasks": row["tasks"],
                "done_tasks": row["done_tasks"] or 0,
                "tasks_percent": _percent(row["done_tasks"] or 0, row["tasks"]),
                "annotations": stored,
                "required": required,
                "annotations_percent": _percent(stored, required),
                "skips": extra.get("skips", 0),
                "in_progress": in_progress.get(kind, 0),
                "scored_tasks": extra.get("scored_tasks", 0),
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


def progress_extras(*, project: Project) -> dict[str, dict]:
    """{kind: {"excess", "skips", "scored_tasks"}}: the progress figures the counters do not hold (scans; Celery's)."""
    extras: dict[str, dict] = {kind: {"excess": 0, "skips": 0, "scored_tasks": 0} for kind in Task.Kind.values}
    tasks = Task.objects.filter(project=project, is_gold=False)
    for kind, excess in (
        tasks.filter(done__gt=F("required")).values("kind").annotate(n=Sum(F("done") - F("required")))
        .order_by().values_list("kind", "n")
    ):
        extras[kind]["excess"] = excess or 0
    for kind, scored in (
        tasks.filter(reward_margin__isnull=False).values("kind").annotate(n=Count("id")).order_by()
        .values_list("kind", "n")
    ):
        extras[kind]["scored_tasks"] = scored
    for kind, skips in (
        _project_annotations(project=project).filter(kind=Annotation.Kind.SKIP, task__is_gold=False)
        .values("task__kind").annotate(n=Count("id")).order_by().values_list("task__kind", "n")
    ):
        extras[kind]["skips"] = skips
    return extras


# Medians ---------------------------------------------------------------------------------------


def _with_medians(*, rows: list[dict], queryset, group: str, median_filter: Q | None = None) -> list[dict]:
    """Fill row["median_ms"]: already there from Median() on PostgreSQL, else from the window query."""
    if median_in_aggregate():
        return rows
    source = queryset.filter(median_filter) if median_filter is not None else queryset
    medians = medians_by_window(queryset=source, group=group)
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
    medians = {"median_ms": Median("time_spent_ms", filter=not_skip)} if median_in_aggregate() else {}
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
    medians = {"median_ms": Median("time_spent_ms")} if median_in_aggregate() else {}
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


def dashboard_figures(*, project: Project) -> dict:
    """The numbers that need a pass over the project's annotations: what the rollup holds."""
    return {
        "labelers": dashboard_labelers(project=project),
        "time_per_task": dashboard_time_per_task(project=project),
        "agreement": dashboard_agreement(project=project),
        "timeline": dashboard_timeline(project=project),
        "reward_agreement": dashboard_reward_agreement(project=project),
        "progress_extras": progress_extras(project=project),
        "computed_at": timezone.now(),
        "pending": False,
    }


def _figures_key(project_id: int) -> str:
    return f"dashboard-figures:{project_id}"


def dashboard_figures_refresh(*, project_id: int) -> bool:
    """Compute a project's rollup and keep it in the cache, with no expiry (the next refresh replaces it).

    False when the project is gone (deleted since the refresh was queued).
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return False
    cache.set(_figures_key(project_id), dashboard_figures(project=project), timeout=None)
    cache.delete(f"dashboard-figures-queued:{project_id}")
    return True


def _figures_queue(project_id: int) -> None:
    """Queue one refresh of the rollup (not again while one is queued), once the caller's transaction commits."""
    if cache.add(f"dashboard-figures-queued:{project_id}", 1, timeout=FIGURES_QUEUED_SECONDS):
        # Sent by name: the task module imports this one, so this one does not import it back.
        transaction.on_commit(lambda: current_app.tasks[REFRESH_TASK].delay(project_id))


def _pending_figures() -> dict:
    """What the page shows of a big project's rollup before the first one is computed: nothing yet."""
    empty = {"unit": "hour", "labels": [], "annotations": [], "skips": [], "total": 0}
    reward = {
        "annotations": 0, "top_agreeing": 0, "top_percent": None, "pairs": 0, "pairs_agreeing": 0,
        "pairs_percent": None,
        "timeline": {"unit": "hour", "labels": [], "top_percent": [], "pairs_percent": [], "annotations": []},
    }
    return {
        "labelers": [], "time_per_task": [], "agreement": Agreement(tasks=0, pairs=0, agreeing_pairs=0),
        "timeline": empty, "reward_agreement": reward, "progress_extras": {}, "computed_at": None, "pending": True,
    }


def _small(project: Project) -> bool:
    """Whether the project is small enough (tasks plus annotations, from the counters) to compute its figures now."""
    size = ProgressCounter.objects.filter(project_id=project.pk).aggregate(n=Sum(F("tasks") + F("annotations")))["n"]
    return (size or 0) <= FIGURES_INLINE_ROWS


def _figures_for(*, project: Project, max_age: int = DASHBOARD_CACHE_SECONDS) -> dict:
    """A small project's figures computed now; a big one's rollup from the cache, refreshed when old (module doc)."""
    if _small(project):
        return dashboard_figures(project=project)
    figures = cache.get(_figures_key(project.pk))
    if figures is None or (timezone.now() - figures["computed_at"]).total_seconds() > max_age:
        _figures_queue(project.pk)
    return figures if figures is not None else _pending_figures()


def _progress_extras_for(*, project: Project) -> dict:
    if _small(project):
        return progress_extras(project=project)
    figures = cache.get(_figures_key(project.pk))
    if figures is None:
        _figures_queue(project.pk)
        return {}
    return figures["progress_extras"]


def dashboard_get_cached(*, project: Project, max_age: int = DASHBOARD_CACHE_SECONDS) -> dict:
    """The page's numbers, shared through the cache for max_age seconds: live progress, and the rollup."""
    return cache.get_or_set(
        f"dashboard:{project.pk}", lambda: _assemble(project=project, figures=_figures_for(project=project)), max_age
    )


def dashboard_get(*, project: Project) -> dict:
    """All the numbers the dashboard page shows, plus the compact series its charts draw, computed now."""
    return _assemble(project=project, figures=dashboard_figures(project=project))


def _assemble(*, project: Project, figures: dict) -> dict:
    progress = dashboard_progress(project=project, extras=figures["progress_extras"])
    labelers, timeline = figures["labelers"], figures["timeline"]
    reward_agreement = dict(figures["reward_agreement"], scored_tasks=progress["scored_tasks"])
    return {
        "progress": progress,
        "labelers": labelers,
        "time_per_task": figures["time_per_task"],
        "agreement": figures["agreement"],
        "timeline": timeline,
        "reward_agreement": reward_agreement,
        "members": Membership.objects.filter(project=project).count(),
        "reviews": review_counts(project=project),
        "computed_at": figures["computed_at"] or timezone.now(),
        "figures_pending": figures["pending"],
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
