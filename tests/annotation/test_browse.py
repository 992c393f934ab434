"""The project's annotations for admins and engineers: filters, disagreements, one task with all its labels."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Annotation, Membership
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def judge(project, labeler, task, order):
    services.task_claim_next(project=project, labeler=labeler, kind=task.kind)
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(),
                               data={"ranking": [[ids[i]] for i in order], "strength": "better"})


@pytest.fixture
def labeled():
    project = ProjectFactory(overlap=2)
    agreed = comparison_task(project=project, prompt__messages=[{"role": "user", "content": "Pick a fruit."}])
    split = comparison_task(project=project, prompt__messages=[{"role": "user", "content": "Pick a planet."}])
    alice, bob = member(project, username="alice"), member(project, username="bob")
    admin = member(project, Membership.Role.ADMIN, username="boss")
    for labeler in (alice, bob):
        judge(project, labeler, agreed, (0, 1))
    judge(project, alice, split, (0, 1))
    judge(project, bob, split, (1, 0))
    return project, admin, alice, agreed, split


def test_filters_disagreements_and_the_task_page(client, labeled):
    project, admin, alice, agreed, split = labeled
    client.force_login(admin)
    url = f"/projects/{project.pk}/annotations/"

    page = client.get(url).content.decode()
    assert page.count("data-annotation-id=") == 4
    only = client.get(url + "?disagreement=1").content.decode()
    assert only.count("data-annotation-id=") == 2 and f"#{split.pk}</a>" in only and f"#{agreed.pk}</a>" not in only
    assert client.get(url + "?labeler=alice").content.decode().count("data-annotation-id=") == 2
    assert client.get(url + "?q=planet").content.decode().count("data-annotation-id=") == 2
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert client.get(url + f"?since={tomorrow}").content.decode().count("data-annotation-id=") == 0
    bad = client.get(url + "?since=yesterday")
    assert bad.status_code == 400 and "since must be a date" in bad.content.decode()

    task_page = client.get(f"/projects/{project.pk}/tasks/{split.pk}/").content.decode()
    assert "Pick a planet." in task_page and "alice" in task_page and "bob" in task_page
    assert task_page.count('data-annotation-id="') == 2
    assert client.get(f"/projects/{project.pk}/tasks/{TaskFactory().pk}/").status_code == 404  # another project's


def test_labelers_may_not_browse_and_outsiders_get_404(client, labeled):
    project, admin, alice, agreed, split = labeled
    client.force_login(alice)
    assert client.get(f"/projects/{project.pk}/annotations/").status_code == 403
    assert client.get(f"/projects/{project.pk}/tasks/{split.pk}/").status_code == 403
    client.force_login(member(ProjectFactory(), Membership.Role.ADMIN, username="eve"))
    assert client.get(f"/projects/{project.pk}/annotations/").status_code == 404


def test_the_dashboard_says_the_right_thing_about_agreement_for_the_overlap(client):
    for overlap, words in ((1, "overlap 1"), (2, "With an overlap of 2")):
        project = ProjectFactory(overlap=overlap)
        TaskFactory(project=project)
        client.force_login(member(project, Membership.Role.ADMIN))
        page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
        assert words in page and ("Set the overlap" in page) == (overlap == 1)
    assert Annotation.objects.count() == 0
