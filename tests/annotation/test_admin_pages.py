"""Project admin pages (create, dashboard, import, settings and members, export) and Django admin."""

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation import services
from annotation.models import Annotation, Lease, Membership, Project, Prompt, Response, Task, TaskResponse
from tests.factories import ProjectFactory, TaskFactory, UserFactory, comparison_task, member, project_creator

pytestmark = pytest.mark.django_db

PAGES = ["project-dashboard", "project-import", "project-settings", "project-export"]


@pytest.fixture
def project():
    return ProjectFactory(name="Helpful chat", overlap=1, lease_seconds=600)


@pytest.fixture
def admin_user(project):
    return member(project, Membership.Role.ADMIN, username="owner")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _html(response) -> str:
    return response.content.decode()


def _snapshot(project) -> tuple:
    project.refresh_from_db()
    members = sorted(Membership.objects.filter(project=project).values_list("user__username", "role"))
    return project.name, project.guidelines, project.overlap, project.lease_seconds, members


# Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_login(client, project, page):
    url = reverse(page, args=[project.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_anonymous_cannot_open_the_create_page(client):
    response = client.get("/projects/new/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("page", PAGES)
def test_non_member_gets_404_labeler_403_admin_200(client, project, admin_user, page):
    url = reverse(page, args=[project.pk])
    client.force_login(UserFactory(username="outsider"))
    assert client.get(url).status_code == 404
    client.force_login(member(project, username="worker"))
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


def test_an_admin_of_another_project_gets_404(client, project):
    other = ProjectFactory()
    client.force_login(member(other, Membership.Role.ADMIN, username="elsewhere"))
    assert client.get(reverse("project-dashboard", args=[project.pk])).status_code == 404
    assert client.post(reverse("project-settings", args=[project.pk]), {"name": "Mine"}).status_code == 404
    assert Project.objects.get(pk=project.pk).name == "Helpful chat"


def test_a_labeler_can_change_nothing(client, project, admin_user):
    worker = member(project, username="worker")
    client.force_login(worker)
    before = _snapshot(project)
    attempts = [
        client.post(reverse("project-settings", args=[project.pk]), {"name": "X", "overlap": 3, "lease_seconds": 60}),
        client.post(reverse("project-member-add", args=[project.pk]), {"username": "worker", "role": "admin"}),
        client.post(reverse("project-member-role", args=[project.pk, worker.pk]), {"role": "admin"}),
        client.post(reverse("project-member-remove", args=[project.pk, admin_user.pk])),
        client.post(
            reverse("project-import", args=[project.pk]),
            {"file": SimpleUploadedFile("p.jsonl", b'{"prompt": "Hi"}\n')},
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert _snapshot(project) == before
    assert not Prompt.objects.filter(project=project).exists()


# Create ---------------------------------------------------------------------------------------


def test_create_page_makes_the_creator_admin(client):
    creator = project_creator(UserFactory(username="founder"))
    client.force_login(creator)
    assert client.get("/projects/new/").status_code == 200
    response = client.post(
        "/projects/new/",
        {"name": "Kind replies", "slug": "", "guidelines": "# Rules\nBe kind.", "overlap": 3, "lease_seconds": 120},
    )
    project = Project.objects.get(name="Kind replies")
    assert response.status_code == 302
    assert response["Location"] == reverse("project-import", args=[project.pk])
    assert (project.slug, project.overlap, project.lease_seconds) == ("kind-replies", 3, 120)
    assert project.guidelines == "# Rules\nBe kind."
    assert Membership.objects.get(project=project, user=creator).role == Membership.Role.ADMIN


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "Valid", "overlap": 0, "lease_seconds": 600}, "overlap"),
        ({"name": "Valid", "overlap": 1, "lease_seconds": 5}, "lease_seconds"),
        ({"name": "   ", "overlap": 1, "lease_seconds": 600}, "name"),
        ({"name": "Valid", "overlap": "many", "lease_seconds": 600}, "overlap"),
        ({"name": "Valid", "slug": "not a slug!", "overlap": 1, "lease_seconds": 600}, "slug"),
    ],
)
def test_create_rejects_bad_input_with_a_field_error(client, data, field):
    client.force_login(project_creator(UserFactory()))
    response = client.post("/projects/new/", data)
    assert response.status_code == 400
    assert f'data-field="{field}"' in _html(response)
    assert not Project.objects.exists()


def test_create_rejects_a_taken_slug_on_the_slug_field(client, project):
    client.force_login(project_creator(UserFactory()))
    response = client.post(
        "/projects/new/", {"name": "Another", "slug": project.slug, "overlap": 1, "lease_seconds": 600}
    )
    assert response.status_code == 400
    assert 'data-field="slug"' in _html(response) and "exists already" in _html(response)
    assert Project.objects.count() == 1


# Settings and members -------------------------------------------------------------------------


def test_settings_page_shows_and_saves_the_settings(admin_client, project):
    url = reverse("project-settings", args=[project.pk])
    page = _html(admin_client.get(url))
    assert 'value="Helpful chat"' in page and "owner" in page
    task = TaskFactory(project=project)
    response = admin_client.post(
        url, {"name": "Helpful chat v2", "guidelines": "Be brief.", "overlap": 2, "lease_seconds": 300}
    )
    assert response.status_code == 302 and response["Location"] == url
    project.refresh_from_db()
    assert (project.name, project.guidelines, project.overlap, project.lease_seconds) == (
        "Helpful chat v2", "Be brief.", 2, 300,
    )
    task.refresh_from_db()
    assert task.required == 2, "open tasks follow the new overlap"
    assert "Settings saved." in _html(admin_client.get(url))


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "X", "overlap": 0, "lease_seconds": 600}, "overlap"),
        ({"name": "X", "overlap": 1, "lease_seconds": 9}, "lease_seconds"),
        ({"name": "", "overlap": 1, "lease_seconds": 600}, "name"),
    ],
)
def test_settings_reject_bad_input_and_change_nothing(admin_client, project, data, field):
    before = _snapshot(project)
    response = admin_client.post(reverse("project-settings", args=[project.pk]), data)
    assert response.status_code == 400
    assert f'data-field="{field}"' in _html(response)
    assert _snapshot(project) == before


def test_add_member_by_username_with_a_role(admin_client, project):
    UserFactory(username="newbie")
    response = admin_client.post(
        reverse("project-member-add", args=[project.pk]), {"username": "newbie", "role": "labeler"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user__username="newbie").role == "labeler"
    page = _html(admin_client.get(reverse("project-settings", args=[project.pk])))
    assert 'data-member="newbie"' in page


@pytest.mark.parametrize(
    "data, field, text",
    [
        ({"username": "ghost", "role": "labeler"}, "username", "No user is called"),
        ({"username": "owner", "role": "labeler"}, "username", "member already"),
        ({"username": "newbie", "role": "overlord"}, "role", "valid choice"),
        ({"username": "", "role": "labeler"}, "username", "required"),
    ],
)
def test_add_member_rejects_bad_input_and_changes_nothing(admin_client, project, data, field, text):
    UserFactory(username="newbie")
    before = _snapshot(project)
    response = admin_client.post(reverse("project-member-add", args=[project.pk]), data)
    assert response.status_code == 400
    html = _html(response)
    assert f'data-field="{field}"' in html and text in html
    assert _snapshot(project) == before


def test_change_a_members_role(admin_client, project):
    worker = member(project, username="worker")
    response = admin_client.post(reverse("project-member-role", args=[project.pk, worker.pk]), {"role": "admin"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=worker).role == "admin"


def test_the_last_admin_cannot_be_demoted_or_removed(admin_client, project, admin_user):
    member(project, username="worker")
    before = _snapshot(project)
    demote = admin_client.post(reverse("project-member-role", args=[project.pk, admin_user.pk]), {"role": "labeler"})
    remove = admin_client.post(reverse("project-member-remove", args=[project.pk, admin_user.pk]))
    assert (demote.status_code, remove.status_code) == (409, 409)
    assert "at least one admin" in _html(demote) and "at least one admin" in _html(remove)
    assert _snapshot(project) == before


def test_an_admin_may_step_down_once_another_admin_exists(admin_client, project, admin_user):
    member(project, Membership.Role.ADMIN, username="deputy")
    response = admin_client.post(reverse("project-member-remove", args=[project.pk, admin_user.pk]))
    assert response.status_code == 302
    assert list(Membership.objects.filter(project=project).values_list("user__username", "role")) == [
        ("deputy", "admin")
    ]
    # No longer a member: the pages are gone for them.
    assert admin_client.get(reverse("project-settings", args=[project.pk])).status_code == 404


def test_remove_member_keeps_their_work_and_frees_their_leases(admin_client, project):
    worker = member(project, username="worker")
    done = TaskFactory(project=project)
    services.task_claim_next(project=project, labeler=worker)
    services.annotation_submit(task=done, labeler=worker, client_id=uuid.uuid4(), data={"text": "Mine."})
    TaskFactory(project=project)
    services.task_claim_next(project=project, labeler=worker)
    assert Lease.objects.filter(labeler=worker).count() == 1
    response = admin_client.post(reverse("project-member-remove", args=[project.pk, worker.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(project=project, user=worker).exists()
    assert not Lease.objects.filter(labeler=worker).exists()
    assert Annotation.objects.filter(labeler=worker).count() == 1


def test_member_actions_on_a_non_member_are_404(admin_client, project):
    stranger = member(ProjectFactory(), username="stranger")
    role_url = reverse("project-member-role", args=[project.pk, stranger.pk])
    assert admin_client.post(role_url, {"role": "admin"}).status_code == 404
    assert admin_client.post(reverse("project-member-remove", args=[project.pk, stranger.pk])).status_code == 404
    assert Membership.objects.get(user=stranger).role == "labeler"


def test_member_actions_need_post(admin_client, project, admin_user):
    assert admin_client.get(reverse("project-member-remove", args=[project.pk, admin_user.pk])).status_code == 405


# Import ---------------------------------------------------------------------------------------


def _upload(client, project, name: str, body: bytes):
    return client.post(reverse("project-import", args=[project.pk]), {"file": SimpleUploadedFile(name, body)})


def test_import_shows_the_counts(admin_client, project):
    body = (
        b'{"id": "q1", "prompt": "Name a prime."}\n'
        b'{"id": "q2", "prompt": "Which is kinder?", "responses": ["Yes.", "No."]}\n'
    )
    response = _upload(admin_client, project, "prompts.jsonl", body)
    assert response.status_code == 200
    html = _html(response)
    assert 'data-count="created_prompts">2<' in html
    assert 'data-count="created_tasks">2<' in html
    assert 'data-count="skipped_existing">0<' in html
    assert Prompt.objects.filter(project=project).count() == 2
    assert set(Task.objects.filter(project=project).values_list("kind", flat=True)) == {"demonstration", "comparison"}
    again = _html(_upload(admin_client, project, "prompts.jsonl", body))
    assert 'data-count="skipped_existing">2<' in again and 'data-count="created_prompts">0<' in again


def test_import_of_a_bad_file_lists_every_bad_line_and_changes_nothing(admin_client, project):
    body = (
        b'{"id": "ok1", "prompt": "Fine."}\n'
        b"this is not json\n"
        b'{"id": "ok2", "prompt": "Also fine."}\n'
        b'{"id": "bad", "prompt": ""}\n'
    )
    response = _upload(admin_client, project, "prompts.jsonl", body)
    assert response.status_code == 400
    html = _html(response)
    assert "Nothing was imported" in html
    table = html[html.index('class="data errors-table"'):]
    rows = table.split("<tr>")[2:]
    assert [row.split('<td class="num">')[1].split("<")[0] for row in rows] == ["2", "4"]
    assert not Prompt.objects.filter(project=project).exists()
    assert not Task.objects.filter(project=project).exists()


def test_import_without_a_file_names_the_field(admin_client, project):
    response = admin_client.post(reverse("project-import", args=[project.pk]), {})
    assert response.status_code == 400
    assert 'data-field="file"' in _html(response)


# Export and dashboard pages -------------------------------------------------------------------


def test_export_page_links_each_format_to_the_api(admin_client, project):
    html = _html(admin_client.get(reverse("project-export", args=[project.pk])))
    for fmt in ("sft", "preference", "raw"):
        assert f'href="/api/projects/{project.pk}/export/?format={fmt}"' in html


def test_dashboard_page_shows_the_numbers_and_chart_data(admin_client, project):
    services.project_update(project=project, overlap=2)
    a, b = member(project, username="alice"), member(project, username="bob")
    task = comparison_task(project=project)
    shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    for labeler in (a, b):
        services.task_claim_next(project=project, labeler=labeler)
        services.annotation_submit(
            task=task, labeler=labeler, client_id=uuid.uuid4(),
            data={"ranking": [[shown[0]], [shown[1]]], "strength": "better"}, time_spent_ms=4000,
        )
    response = admin_client.get(reverse("project-dashboard", args=[project.pk]))
    html = _html(response)
    assert response.status_code == 200
    assert 'data-kpi="agreement">100.0%<' in html
    assert 'data-kpi="tasks">1 / 1<' in html
    assert 'data-labeler="alice"' in html and 'data-labeler="bob"' in html
    assert "/static/vendor/chart.umd.min.js" in html and "/static/js/dashboard.js" in html
    assert "/static/css/dashboard.css" in html
    assert f'href="/projects/{project.pk}/label/comparison/"' in html
    data = json.loads(html.split('id="dashboard-data" type="application/json">')[1].split("</script>")[0])
    assert sorted(data["labelers"]["names"]) == ["alice", "bob"]
    assert sum(data["timeline"]["annotations"]) == 2


def test_dashboard_page_of_an_empty_project_guides_the_admin(admin_client, project):
    html = _html(admin_client.get(reverse("project-dashboard", args=[project.pk])))
    assert "No tasks yet" in html and reverse("project-import", args=[project.pk]) in html


# Django admin ---------------------------------------------------------------------------------

MODELS = [Project, Membership, Prompt, Response, Task, TaskResponse, Lease, Annotation]


@pytest.fixture
def superuser_client(client):
    su = get_user_model().objects.create_superuser("root", "root@example.com", "pass-1234")
    client.force_login(su)
    return client


@pytest.fixture
def some_data(project):
    labeler = member(project, username="labeler")
    task = comparison_task(project=project)
    services.task_claim_next(project=project, labeler=labeler)
    shown = list(task.task_responses.values_list("response_id", flat=True))
    annotation, _ = services.annotation_submit(
        task=task, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": [shown], "strength": "tie"}
    )
    TaskFactory(project=project)
    services.task_claim_next(project=project, labeler=labeler)
    return {"task": task, "annotation": annotation}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_django_admin_changelist_and_add_pages_open(superuser_client, some_data, model):
    name = model._meta.model_name
    assert superuser_client.get(reverse(f"admin:annotation_{name}_changelist")).status_code == 200
    assert superuser_client.get(reverse(f"admin:annotation_{name}_add")).status_code == 200
    obj = model.objects.first()
    assert obj is not None
    assert superuser_client.get(reverse(f"admin:annotation_{name}_change", args=[obj.pk])).status_code == 200


def test_django_admin_filters_annotations_by_project_and_kind(superuser_client, some_data, project):
    url = reverse("admin:annotation_annotation_changelist")
    hit = superuser_client.get(url, {"task__project__id__exact": project.pk, "kind__exact": "comparison"})
    miss = superuser_client.get(url, {"kind__exact": "skip"})
    assert hit.status_code == miss.status_code == 200
    assert hit.context["cl"].result_count == 1 and miss.context["cl"].result_count == 0


def test_django_admin_annotation_client_id_is_read_only(superuser_client, some_data):
    annotation = some_data["annotation"]
    page = _html(superuser_client.get(reverse("admin:annotation_annotation_change", args=[annotation.pk])))
    assert str(annotation.client_id) in page
    assert 'name="client_id"' not in page


def test_django_admin_task_list_has_no_query_per_row(superuser_client, project, django_assert_max_num_queries):
    for _ in range(3):
        TaskFactory(project=project)
    with django_assert_max_num_queries(20) as few:
        superuser_client.get(reverse("admin:annotation_task_changelist"))
    for _ in range(15):
        TaskFactory(project=project)
    with django_assert_max_num_queries(len(few)):
        superuser_client.get(reverse("admin:annotation_task_changelist"))


def test_settings_page_previews_the_guidelines_as_sanitised_markdown(admin_client, project):
    services.project_update(project=project, guidelines="# Rules\n\nBe **brief**.\n\n<script>alert(1)</script>")
    html = _html(admin_client.get(reverse("project-settings", args=[project.pk])))
    preview = html.split('id="guidelines-preview">')[1].split("</div>")[0]
    assert "<h1>Rules</h1>" in preview and "<strong>brief</strong>" in preview
    assert "<script>" not in preview


# In Chromium ----------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_draws_its_charts_and_settings_work_in_chromium(live_server):
    from tests.browser import launch_browser, login

    project = ProjectFactory(name="Browser admin", overlap=1)
    member(project, Membership.Role.ADMIN, username="chief")
    worker = member(project, username="worker")
    task = TaskFactory(project=project)
    services.task_claim_next(project=project, labeler=worker)
    services.annotation_submit(task=task, labeler=worker, client_id=uuid.uuid4(), data={"text": "Hi."}, time_spent_ms=5)
    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        login(page, live_server.url, "chief", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
        page.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length === 2")
        assert page.locator("canvas#timeline-chart").bounding_box()["height"] > 100
        page.goto(f"{live_server.url}/projects/{project.pk}/settings/")
        with page.expect_navigation():
            page.select_option('tr[data-member="worker"] select', "admin")
        assert Membership.objects.get(project=project, user=worker).role == "admin"
        dialogs = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        with page.expect_navigation():
            page.click('tr[data-member="worker"] button:has-text("Remove")')
        assert dialogs and dialogs[0].startswith("Remove worker from Browser admin?")
        assert not Membership.objects.filter(project=project, user=worker).exists()
        assert "Removed worker" in page.content()
        assert errors == []
