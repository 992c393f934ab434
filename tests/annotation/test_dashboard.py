"""The dashboard's numbers, computed from annotations made through the real claim and submit services."""

import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from annotation import dashboard, services
from annotation.models import Annotation, Lease, Membership, Task
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def _claim(project, labeler, kind):
    task = services.task_claim_next(project=project, labeler=labeler, kind=kind)
    assert task is not None, f"{labeler} found no {kind} task"
    return task


def _rank(project, labeler, *, tops: dict, ms: dict):
    """Claim a comparison task and rank it with tops[task] first; ms[task] is the time spent."""
    task = _claim(project, labeler, Task.Kind.COMPARISON)
    shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    best = shown[tops[task.pk]]
    rest = [r for r in shown if r != best]
    services.annotation_submit(
        task=task,
        labeler=labeler,
        client_id=uuid.uuid4(),
        data={"ranking": [[best], rest], "strength": "better"},
        time_spent_ms=ms[task.pk],
    )
    return task


@pytest.fixture
def labeled():
    """Overlap 2: three comparisons judged by A and B (they agree on two), two demonstrations.

    A writes one demonstration; B skips that same task.
    """
    project = ProjectFactory(overlap=2)
    admin = member(project, Membership.Role.ADMIN, username="boss")
    a = member(project, username="alice")
    b = member(project, username="bob")
    c1, c2, c3 = (comparison_task(project=project) for _ in range(3))
    d1 = TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION)
    d2 = TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION)
    a_tops = {c1.pk: 0, c2.pk: 1, c3.pk: 0}
    b_tops = {c1.pk: 0, c2.pk: 1, c3.pk: 1}
    a_ms = {c1.pk: 1000, c2.pk: 2000, c3.pk: 6000}
    b_ms = {c1.pk: 3000, c2.pk: 5000, c3.pk: 10000}
    for _ in range(3):
        _rank(project, a, tops=a_tops, ms=a_ms)
        _rank(project, b, tops=b_tops, ms=b_ms)
    demo = _claim(project, a, Task.Kind.DEMONSTRATION)
    assert demo == d1
    services.annotation_submit(
        task=demo, labeler=a, client_id=uuid.uuid4(), data={"text": "A careful answer."}, time_spent_ms=8000
    )
    skipped = _claim(project, b, Task.Kind.DEMONSTRATION)
    assert skipped == d1
    services.task_skip(task=skipped, labeler=b, reason="Not my field.", time_spent_ms=900_000)
    return {"project": project, "admin": admin, "a": a, "b": b, "comparisons": [c1, c2, c3], "demos": [d1, d2]}


def test_progress_counts_tasks_and_annotations_per_kind(labeled):
    progress = dashboard.dashboard_progress(project=labeled["project"])
    kinds = {k["kind"]: k for k in progress["kinds"]}
    assert (kinds["comparison"]["done_tasks"], kinds["comparison"]["tasks"]) == (3, 3)
    assert (kinds["comparison"]["annotations"], kinds["comparison"]["required"]) == (6, 6)
    assert kinds["comparison"]["annotations_percent"] == 100.0
    assert (kinds["demonstration"]["done_tasks"], kinds["demonstration"]["tasks"]) == (0, 2)
    assert (kinds["demonstration"]["annotations"], kinds["demonstration"]["required"]) == (1, 4)
    assert kinds["demonstration"]["annotations_percent"] == 25.0
    assert kinds["demonstration"]["skips"] == 1
    assert (progress["done_tasks"], progress["tasks"]) == (3, 5)
    assert (progress["annotations"], progress["required"]) == (7, 10)
    assert progress["annotations_percent"] == 70.0
    assert progress["in_progress"] == 0


def test_progress_counts_live_leases_as_in_progress(labeled):
    project = labeled["project"]
    carol = member(project, username="carol")
    _claim(project, carol, Task.Kind.DEMONSTRATION)
    assert dashboard.dashboard_progress(project=project)["in_progress"] == 1
    Lease.objects.filter(labeler=carol).update(expires_at=datetime(2000, 1, 1, tzinfo=dt_timezone.utc))
    assert dashboard.dashboard_progress(project=project)["in_progress"] == 0


def test_progress_caps_tasks_that_hold_more_than_the_lowered_overlap(labeled):
    project = labeled["project"]
    services.project_update(project=project, overlap=1)
    progress = dashboard.dashboard_progress(project=project)
    kinds = {k["kind"]: k for k in progress["kinds"]}
    # Done comparison tasks keep required=2; the demonstration tasks now need one each.
    assert (kinds["demonstration"]["annotations"], kinds["demonstration"]["required"]) == (1, 2)
    assert kinds["demonstration"]["done_tasks"] == 1
    assert progress["annotations"] <= progress["required"]


def test_labeler_rows_count_work_skips_and_time(labeled):
    rows = {row["username"]: row for row in dashboard.dashboard_labelers(project=labeled["project"])}
    assert set(rows) == {"alice", "bob"}
    alice, bob = rows["alice"], rows["bob"]
    assert (alice["annotations"], alice["comparisons"], alice["demonstrations"], alice["skips"]) == (4, 3, 1, 0)
    assert (bob["annotations"], bob["comparisons"], bob["demonstrations"], bob["skips"]) == (3, 3, 0, 1)
    # Times of submitted work only: alice 1000, 2000, 6000, 8000; bob 3000, 5000, 10000.
    assert alice["mean_ms"] == 4250 and alice["median_ms"] == 4000
    assert bob["mean_ms"] == 6000 and bob["median_ms"] == 5000
    assert bob["skip_rate"] == 25.0
    assert alice["last_active"] is not None
    # The busiest labeler comes first.
    assert [row["username"] for row in dashboard.dashboard_labelers(project=labeled["project"])] == ["alice", "bob"]


def test_time_per_task_by_kind(labeled):
    rows = {row["kind"]: row for row in dashboard.dashboard_time_per_task(project=labeled["project"])}
    # Comparisons: 1000 2000 3000 5000 6000 10000 -> median 4000, mean 4500. The skip is left out.
    assert rows["comparison"] == {
        "kind": "comparison", "label": "Comparison", "annotations": 6, "mean_ms": 4500, "median_ms": 4000,
    }
    assert (rows["demonstration"]["annotations"], rows["demonstration"]["median_ms"]) == (1, 8000)


def test_agreement_is_the_share_of_labeler_pairs_agreeing_on_the_best(labeled):
    agreement = dashboard.dashboard_agreement(project=labeled["project"])
    assert (agreement.tasks, agreement.pairs, agreement.agreeing_pairs) == (3, 3, 2)
    assert agreement.rate == pytest.approx(2 / 3)
    assert agreement.percent == 66.7


def test_agreement_reads_in_chunks_with_the_same_result(labeled):
    chunked = dashboard.dashboard_agreement(project=labeled["project"], chunk_size=1)
    assert (chunked.tasks, chunked.pairs, chunked.agreeing_pairs) == (3, 3, 2)


def _judge(task, labeler, ranking, all_bad=False):
    services.task_claim_next(project=task.project, labeler=labeler, kind=Task.Kind.COMPARISON)
    services.annotation_submit(
        task=task, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": ranking, "all_bad": all_bad}
    )


def test_agreement_handles_ties_three_judges_and_all_bad():
    project = ProjectFactory(overlap=3)
    judges = [member(project, username=f"judge{i}") for i in range(3)]
    texts = ("One.", "Two.", "Three.")
    tie_task = comparison_task(project=project, texts=texts, priority=3)
    triple_task = comparison_task(project=project, texts=texts, priority=2)
    bad_task = comparison_task(project=project, texts=texts, priority=1)
    r = lambda task: list(task.task_responses.order_by("position").values_list("response_id", flat=True))  # noqa: E731
    x, y, z = r(tie_task)
    # A tie at the top agrees only with the same tie, whatever order its members were listed in.
    _judge(tie_task, judges[0], [[x, y], [z]])
    _judge(tie_task, judges[1], [[y, x], [z]])
    _judge(tie_task, judges[2], [[x], [y], [z]])
    # Three judges give three pairs: two of them pick p first, one picks q.
    p, q, s = r(triple_task)
    _judge(triple_task, judges[0], [[p], [q], [s]])
    _judge(triple_task, judges[1], [[p], [s], [q]])
    _judge(triple_task, judges[2], [[q], [p], [s]])
    # "All bad" with no ranking has no top choice; one ranked judgement alone makes no pair.
    u, v, w = r(bad_task)
    _judge(bad_task, judges[0], [], all_bad=True)
    _judge(bad_task, judges[1], [], all_bad=True)
    _judge(bad_task, judges[2], [[u], [v], [w]])
    agreement = dashboard.dashboard_agreement(project=project)
    # tie_task: (0,1) agree, (0,2) and (1,2) not; triple_task: (0,1) agree only.
    assert (agreement.tasks, agreement.pairs, agreement.agreeing_pairs) == (2, 6, 2)
    assert agreement.percent == 33.3


def test_agreement_without_multi_judged_tasks_is_empty():
    project = ProjectFactory(overlap=1)
    agreement = dashboard.dashboard_agreement(project=project)
    assert (agreement.tasks, agreement.pairs, agreement.rate, agreement.percent) == (0, 0, None, None)


def test_timeline_counts_per_hour_and_fills_gaps(labeled):
    project = labeled["project"]
    base = datetime(2026, 3, 2, 9, 15, tzinfo=dt_timezone.utc)
    ids = list(Annotation.objects.filter(task__project=project).order_by("id").values_list("id", flat=True))
    # Seven annotations and a skip: 3 at 09:xx, none at 10:xx, the rest at 11:xx.
    for index, annotation_id in enumerate(ids):
        hour = 0 if index < 3 else 2
        Annotation.objects.filter(pk=annotation_id).update(created_at=base + timedelta(hours=hour, minutes=index))
    timeline = dashboard.dashboard_timeline(project=project)
    assert timeline["unit"] == "hour"
    assert timeline["labels"] == ["Mar 02 09:00", "Mar 02 10:00", "Mar 02 11:00"]
    assert timeline["annotations"] == [3, 0, 4]
    assert timeline["skips"] == [0, 0, 1]
    assert timeline["total"] == 7


def test_timeline_switches_to_days_for_long_projects(labeled):
    project = labeled["project"]
    base = datetime(2026, 3, 2, 23, 0, tzinfo=dt_timezone.utc)
    first, *rest = Annotation.objects.filter(task__project=project).order_by("id").values_list("id", flat=True)
    Annotation.objects.filter(pk=first).update(created_at=base)
    Annotation.objects.filter(pk__in=rest).update(created_at=base + timedelta(days=6, hours=2))
    timeline = dashboard.dashboard_timeline(project=project)
    assert timeline["unit"] == "day"  # 146 hours: more than the chart's 120 buckets of an hour
    assert timeline["labels"] == ["Mar 02", "Mar 03", "Mar 04", "Mar 05", "Mar 06", "Mar 07", "Mar 08", "Mar 09"]
    assert timeline["annotations"] == [1, 0, 0, 0, 0, 0, 0, 6]
    assert timeline["skips"] == [0, 0, 0, 0, 0, 0, 0, 1]


def test_timeline_of_an_empty_project_is_empty():
    timeline = dashboard.dashboard_timeline(project=ProjectFactory())
    assert timeline["labels"] == [] and timeline["total"] == 0


def test_dashboard_reads_are_a_fixed_number_of_queries(labeled, django_assert_max_num_queries):
    project = labeled["project"]
    with django_assert_max_num_queries(14) as captured:
        dashboard.dashboard_get(project=project)
    baseline = len(captured)
    # Twenty more annotated comparisons must not add a query per row.
    more = ProjectFactory(overlap=2)
    a, b = member(more, username="ann"), member(more, username="ben")
    tasks = [comparison_task(project=more) for _ in range(20)]
    tops = {t.pk: 0 for t in tasks}
    ms = {t.pk: 100 for t in tasks}
    for _ in tasks:
        _rank(more, a, tops=tops, ms=ms)
        _rank(more, b, tops=tops, ms=ms)
    with django_assert_max_num_queries(baseline):
        data = dashboard.dashboard_get(project=more)
    assert data["agreement"].pairs == 20 and data["agreement"].agreeing_pairs == 20


def test_dashboard_ignores_other_projects(labeled):
    other = ProjectFactory(overlap=2)
    stranger = member(other, username="stranger")
    task = TaskFactory(project=other, kind=Task.Kind.DEMONSTRATION)
    services.task_claim_next(project=other, labeler=stranger)
    services.annotation_submit(task=task, labeler=stranger, client_id=uuid.uuid4(), data={"text": "Elsewhere."})
    usernames = [row["username"] for row in dashboard.dashboard_labelers(project=labeled["project"])]
    assert "stranger" not in usernames
    assert dashboard.dashboard_progress(project=labeled["project"])["annotations"] == 7


def test_duration_display():
    assert dashboard.duration_display(None) == "–"
    assert dashboard.duration_display(850) == "850 ms"
    assert dashboard.duration_display(12_400) == "12.4 s"
    assert dashboard.duration_display(185_000) == "3 min 05 s"
    assert dashboard.duration_display(3_900_000) == "1 h 05 min"


def test_cached_dashboard_is_shared_for_a_while_then_recomputed(labeled, django_assert_num_queries):
    from django.core.cache import cache

    project = labeled["project"]
    first = dashboard.dashboard_get_cached(project=project)
    with django_assert_num_queries(0):
        again = dashboard.dashboard_get_cached(project=project)
    assert again["progress"] == first["progress"]
    cache.delete(f"dashboard:{project.pk}")
    carol = member(project, username="carol")
    task = _claim(project, carol, Task.Kind.DEMONSTRATION)
    services.annotation_submit(task=task, labeler=carol, client_id=uuid.uuid4(), data={"text": "More."})
    assert dashboard.dashboard_get_cached(project=project)["progress"]["annotations"] == 8
