"""The labeler pages: project list, work page (lease, reload, empty state) and their access rules."""

import json
import re

import pytest
from django.urls import reverse

from annotation.models import Annotation, Lease, Membership, Task
from tests.factories import ProjectFactory, TaskFactory, UserFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def label_url(project, kind):
    return reverse("task-label", args=[project.pk, kind])


def task_data(response) -> dict:
    match = re.search(r'<script id="task-data" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page carries its task as json_script"
    return json.loads(match.group(1))


@pytest.fixture
def project():
    return ProjectFactory(name="Helpful chat", guidelines="Prefer **short** answers.")


@pytest.fixture
def labeler(project, client):
    user = member(project)
    client.force_login(user)
    return user


def test_pages_require_login(client, project):
    for url in ["/", label_url(project, "demonstration")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_non_member_gets_404_and_claims_nothing(client, project):
    TaskFactory(project=project)
    client.force_login(UserFactory())
    assert client.get(label_url(project, "demonstration")).status_code == 404
    assert not Lease.objects.exists()


def test_unknown_kind_is_404(client, project, labeler):
    assert client.get(f"/projects/{project.pk}/label/skip/").status_code == 404


def test_work_page_renders_the_leased_task_and_reload_resumes_it(client, project, labeler):
    first = TaskFactory(project=project, prompt__messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is **2+2**?"},
    ])
    TaskFactory(project=project)
    response = client.get(label_url(project, "demonstration"))
    assert response.status_code == 200
    html = response.content.decode()
    assert task_data(response)["id"] == first.pk
    assert f'data-task-id="{first.pk}"' in html
    assert "What is <strong>2+2</strong>?" in html  # Markdown rendered on the server
    assert 'class="bubble bubble-system"' in html and 'class="bubble bubble-user"' in html
    assert 'id="demo-text"' in html and "autofocus" in html
    assert "Prefer <strong>short</strong> answers." in html  # guidelines panel
    assert "js/labeling.js" in html
    assert Lease.objects.filter(task=first, labeler=labeler).count() == 1

    again = client.get(label_url(project, "demonstration"))
    assert task_data(again)["id"] == first.pk
    assert Lease.objects.filter(labeler=labeler).count() == 1


def test_comparison_page_shows_numbered_responses_with_rendered_markdown(client, project, labeler):
    task = comparison_task(project=project, texts=("Use `len()`.", "Count *by hand*.", "Ask someone."))
    response = client.get(label_url(project, "comparison"))
    html = response.content.decode()
    data = task_data(response)
    assert data["id"] == task.pk
    assert [r["text"] for r in data["responses"]] == ["Use `len()`.", "Count *by hand*.", "Ask someone."]
    assert "<code>len()</code>" in html and "<em>by hand</em>" in html
    assert 'data-mode="rank"' in html
    for number, shown in enumerate(data["responses"], start=1):
        assert f'data-response-id="{shown["id"]}" data-number="{number}"' in html


def test_pair_comparison_uses_the_pair_controls(client, project, labeler):
    comparison_task(project=project)
    html = client.get(label_url(project, "comparison")).content.decode()
    assert 'data-mode="pair"' in html
    assert 'data-choice="tie"' in html and 'value="much_better"' in html


def test_empty_state_when_nothing_is_left(client, project, labeler):
    task = TaskFactory(project=project)
    Annotation.objects.create(task=task, labeler=labeler, kind=Annotation.Kind.SKIP, reason="unclear")
    comparison_task(project=project)  # another kind does not count
    response = client.get(label_url(project, "demonstration"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "All done — no demonstration tasks are waiting for you" in html
    assert 'href="/"' in html
    assert 'id="task-data"' not in html
    assert not Lease.objects.filter(task__kind=Task.Kind.DEMONSTRATION).exists()


def test_project_list_shows_progress_role_and_buttons(client, project, labeler):
    project.overlap = 2
    project.save()
    done = TaskFactory(project=project, required=2, done=2, status=Task.Status.DONE)
    TaskFactory(project=project, required=2, done=1)
    assert done.pk
    comparison_task(project=project, required=2, done=2, status=Task.Status.DONE)
    other = ProjectFactory(name="Secret project")
    admin_of = ProjectFactory(name="Admin project")
    Membership.objects.create(project=admin_of, user=labeler, role=Membership.Role.ADMIN)

    html = client.get("/").content.decode()
    assert "Helpful chat" in html and "Admin project" in html
    assert "Secret project" not in html and str(other.pk) not in re.findall(r"/projects/(\d+)/", html)
    card = html.split(f'data-project-id="{project.pk}"')[1].split("</article>")[0]
    assert "Labeler" in card
    # Demonstrations: 3 of 4 annotations stored, so 75%; comparisons: 2 of 2.
    demo = card.split('data-kind="demonstration"')[1].split('data-kind="comparison"')[0]
    assert "75.0%" in demo and 'max="100" value="75.0"' in demo
    assert 'data-kind="comparison"' in card and "100.0%" in card
    assert "Write demonstrations" in card and label_url(project, "demonstration") in card
    assert "Compare responses" not in card  # no open comparison task
    assert "/dashboard/" not in card
    admin_card = html.split(f'data-project-id="{admin_of.pk}"')[1].split("</article>")[0]
    assert "Admin" in admin_card and f"/projects/{admin_of.pk}/dashboard/" in admin_card


def test_project_list_empty(client):
    client.force_login(UserFactory())
    assert "You are not a member of any project yet" in client.get("/").content.decode()


def test_progress_indicator_counts_todays_work(client, project, labeler):
    for _ in range(2):
        task = TaskFactory(project=project)
        Annotation.objects.create(task=task, labeler=labeler, kind=Annotation.Kind.DEMONSTRATION, text="x")
    TaskFactory(project=project)
    html = client.get(label_url(project, "demonstration")).content.decode()
    assert re.search(r'<strong id="done-today">2</strong>', html)


def test_the_work_page_reads_progress_from_counters_and_is_right_right_after_a_submit(client, project, labeler):
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation import services

    tasks = TaskFactory.create_batch(4, project=project)
    TaskFactory(project=project, kind="comparison")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(label_url(project, "demonstration")).content.decode()
    assert "0.0% of the project's demonstrations done" in html
    assert not [q["sql"] for q in queries if 'SUM("annotation_task"' in q["sql"]], "the page scanned the tasks"
    task = services.task_claim_next(project=project, labeler=labeler, kind="demonstration")
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "An answer."})
    html = client.get(label_url(project, "demonstration")).content.decode()
    assert "25.0% of the project's demonstrations done" in html
    assert len(tasks) == 4


def test_project_list_counts_progress_in_one_query_for_any_number_of_projects(client, django_assert_max_num_queries):
    user = member(ProjectFactory())
    for _ in range(5):
        project = ProjectFactory()
        TaskFactory.create_batch(2, project=project)
        Membership.objects.create(project=project, user=user, role="labeler")
    client.force_login(user)
    # session, user, projects, roles, progress, waiting for the user, the create-project permission (user's and
    # groups'), + slack of one
    with django_assert_max_num_queries(9):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count('data-kind="demonstration"') == 5


def test_project_cards_count_what_waits_for_this_labeler_and_the_empty_queue_points_to_the_other(client):
    import uuid

    from annotation import services

    project = ProjectFactory(overlap=2)
    demo = TaskFactory(project=project)
    for _ in range(3):
        TaskFactory(project=project, kind="comparison")
    alice = member(project, username="alice-waiting")
    services.task_claim_next(project=project, labeler=alice, kind="demonstration")
    services.annotation_submit(task=demo, labeler=alice, client_id=uuid.uuid4(), data={"text": "Done."})
    client.force_login(alice)

    page = client.get("/").content.decode()
    # The demonstration still needs a second label, but not alice's: no demonstration button for her.
    assert f'href="/projects/{project.pk}/label/comparison/" data-waiting="3"' in page
    assert "3 waiting for you" in page
    assert f'href="/projects/{project.pk}/label/demonstration/"' not in page

    empty = client.get(f"/projects/{project.pk}/label/demonstration/").content.decode()
    assert 'id="empty-state"' in empty
    assert f'href="/projects/{project.pk}/label/comparison/"' in empty and "3 waiting" in empty
