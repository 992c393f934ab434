"""The dashboard's timeline reads at any scale, and the page refreshes itself in Chromium."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.core.cache import cache

from annotation import dashboard, services
from annotation.dashboard import MAX_TIMELINE_BUCKETS, timeline_buckets
from annotation.models import Annotation, Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, TaskFactory, member

T0 = datetime(2026, 3, 4, 10, 17, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("span, unit, buckets", [
    (timedelta(0), "minute", 1),
    (timedelta(minutes=45), "minute", 46),
    (timedelta(hours=20), "hour", 21),
    (timedelta(days=40), "day", 41),
    (timedelta(days=700), "week", 101),
    (timedelta(days=3000), "week", MAX_TIMELINE_BUCKETS),
])
def test_the_bucket_is_the_finest_that_covers_the_span(span, unit, buckets):
    got, step, _, _, start, end = timeline_buckets(T0, T0 + span)
    assert got == unit
    assert (end - start) // step + 1 == buckets


@pytest.mark.django_db
def test_an_hour_of_work_is_counted_per_minute_with_empty_minutes_as_zero():
    project = ProjectFactory(overlap=1)
    labeler = member(project)
    tasks = TaskFactory.create_batch(3, project=project)
    for task in tasks:
        services.task_claim_next(project=project, labeler=labeler)
        services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "x"})
    for minutes, annotation in zip((0, 0, 5), Annotation.objects.order_by("id")):
        Annotation.objects.filter(pk=annotation.pk).update(created_at=T0 + timedelta(minutes=minutes))
    timeline = dashboard.dashboard_timeline(project=project)
    assert timeline["unit"] == "minute" and timeline["labels"][0] == "10:17"
    assert timeline["annotations"] == [2, 0, 0, 0, 0, 1] and timeline["total"] == 3


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_refreshes_itself_with_new_work(live_server):
    project = ProjectFactory(name="Live dashboard", overlap=1)
    admin = member(project, Membership.Role.ADMIN, username="live-admin")
    labeler = member(project, username="live-labeler")
    tasks = TaskFactory.create_batch(2, project=project)
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, admin.username, "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
        assert page.inner_text("[data-kpi=percent]").strip() == "0.0%"
        services.task_claim_next(project=project, labeler=labeler)
        services.annotation_submit(task=tasks[0], labeler=labeler, client_id=uuid.uuid4(), data={"text": "x"})
        cache.delete(f"dashboard:{project.pk}")  # as when its 30 seconds are up
        page.evaluate("() => window.FeedbackLoopDashboard.refresh()")
        page.wait_for_function("() => document.getElementById('content').dataset.refreshedAt")
        assert page.inner_text("[data-kpi=percent]").strip() == "50.0%"
        assert page.locator("#timeline-chart").count() == 1
