"""The role table from the outside: what each project role gets from every API route and page.

One table in annotation/roles.py decides; these tests ask over HTTP, as each role would, and
compare the answers with the table itself, so a route that forgets the check fails here.
"""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from annotation.models import Membership, Project
from annotation.roles import PERMISSIONS, Action, role_allows
from tests.factories import ProjectFactory, TaskFactory, UserFactory, member, project_creator, model_version

pytestmark = pytest.mark.django_db

ROLES = [Membership.Role.LABELER, Membership.Role.REVIEWER, Membership.Role.ENGINEER, Membership.Role.ADMIN]


def test_the_table_matches_the_design():
    assert PERMISSIONS[Membership.Role.LABELER] == {Action.LABEL}
    assert PERMISSIONS[Membership.Role.REVIEWER] == {Action.LABEL, Action.REVIEW}
    assert PERMISSIONS[Membership.Role.ENGINEER] == {Action.LABEL, Action.DASHBOARD, Action.EXPORT, Action.TRAIN}
    assert PERMISSIONS[Membership.Role.ADMIN] == set(Action)
    assert set(PERMISSIONS) == set(Membership.Role.values)  # every role is in the table
    assert set(ROLES) == set(Membership.Role.values)  # and every role is asked below
    assert not role_allows(None, Action.LABEL) and not role_allows("owner", Action.LABEL)


# (action the route needs, method, url template, body)
API_ROUTES = [
    (Action.LABEL, "get", "/api/projects/{p}/", None),
    (Action.LABEL, "post", "/api/projects/{p}/next/", None),
    (Action.LABEL, "get", "/api/projects/{p}/reviews/mine/", None),
    (Action.REVIEW, "post", "/api/projects/{p}/reviews/next/", None),
    (Action.MANAGE, "patch", "/api/projects/{p}/", {"guidelines": "changed"}),
    (Action.MANAGE, "post", "/api/projects/{p}/members/", {"username": "{self}", "role": "admin"}),
    (Action.MANAGE, "post", "/api/projects/{p}/import/", {}),
    (Action.EXPORT, "get", "/api/projects/{p}/export/?format=raw", None),
    (Action.EXPORT, "get", "/api/projects/{p}/export/counts/?format=preference", None),
    (Action.TRAIN, "get", "/api/projects/{p}/leaderboard/", None),
    (Action.TRAIN, "get", "/api/training-runs/", None),
    (Action.TRAIN, "get", "/api/models/", None),
    (Action.TRAIN, "get", "/api/generation-jobs/", None),
    (Action.TRAIN, "get", "/api/evaluations/", None),
    (Action.TRAIN, "get", "/api/training-runs/defaults/sft/", None),
]
PAGES = [
    (Action.LABEL, "/"),
    (Action.LABEL, "/projects/{p}/label/demonstration/"),
    (Action.REVIEW, "/projects/{p}/review/"),
    (Action.DASHBOARD, "/projects/{p}/dashboard/"),
    (Action.EXPORT, "/projects/{p}/export/"),
    (Action.MANAGE, "/projects/{p}/import/"),
    (Action.MANAGE, "/projects/{p}/settings/"),
    (Action.TRAIN, "/training/runs/"),
    (Action.TRAIN, "/training/runs/new/?project={p}"),
    (Action.TRAIN, "/training/models/"),
    (Action.TRAIN, "/training/generation/"),
    (Action.TRAIN, "/training/evaluations/"),
    (Action.TRAIN, "/training/projects/{p}/leaderboard/"),
]


@pytest.mark.parametrize("role", ROLES)
def test_every_api_route_answers_as_the_table_says(client_for, role):
    project = ProjectFactory(guidelines="original")
    TaskFactory(project=project)
    user = member(project, role)
    client = client_for(user)
    for action, method, url, body in API_ROUTES:
        if body is not None:
            body = {k: v.replace("{self}", user.username) if isinstance(v, str) else v for k, v in body.items()}
        fmt = "multipart" if url.endswith("import/") else "json"
        response = getattr(client, method)(url.format(p=project.pk), body, format=fmt)
        if role_allows(role, action):
            assert response.status_code in (200, 204, 400), (role, url, response.status_code, response.content)
        else:
            assert response.status_code == 403, (role, url, response.status_code)
    project.refresh_from_db()
    assert (project.guidelines == "changed") == role_allows(role, Action.MANAGE)
    assert Membership.objects.get(user=user).role == (Membership.Role.ADMIN if role_allows(role, Action.MANAGE)
                                                       else role)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_as_the_table_says(client, role):
    project = ProjectFactory()
    TaskFactory(project=project)
    client.force_login(member(project, role))
    for action, url in PAGES:
        status = client.get(url.format(p=project.pk)).status_code
        assert status == (200 if role_allows(role, action) else 403), (role, url, status)


@pytest.mark.parametrize("role", ROLES)
def test_the_project_card_and_tabs_show_only_what_the_role_opens(client, role):
    project = ProjectFactory()
    TaskFactory(project=project)
    client.force_login(member(project, role))
    card = client.get("/").content.decode()
    links = {
        Action.DASHBOARD: f"/projects/{project.pk}/dashboard/",
        Action.MANAGE: f"/projects/{project.pk}/settings/",
        Action.EXPORT: f"/projects/{project.pk}/export/",
        Action.TRAIN: f"/training/runs/?project={project.pk}",
        Action.REVIEW: f"/projects/{project.pk}/review/",
    }
    for action, link in links.items():
        assert (link in card) == role_allows(role, action), (role, link)
    assert ('href="/training/runs/"' in card) == role_allows(role, Action.TRAIN)  # the nav's Training link
    if role_allows(role, Action.DASHBOARD):
        tabs = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
        assert (f"/projects/{project.pk}/import/" in tabs) == role_allows(role, Action.MANAGE)
        assert (f"/projects/{project.pk}/review/" in tabs) == role_allows(role, Action.REVIEW)


def test_outsiders_get_404_on_project_pages_not_403(client):
    project = ProjectFactory()
    client.force_login(member(ProjectFactory(), Membership.Role.ADMIN))
    for action, url in PAGES:
        if "{p}" in url:
            assert client.get(url.format(p=project.pk)).status_code == 404, url


def test_engineers_train_but_do_not_manage_members(client_for, tmp_path, settings, enqueued_runs):
    from tests.training.labels import demonstrations_create

    settings.STORAGE_ROOT = tmp_path
    project = ProjectFactory()
    engineer = member(project, Membership.Role.ENGINEER)
    labeler = member(project)
    base = model_version(name="base", kind="base", path="models/tiny")
    demonstrations_create(project=project, n=2)
    client = client_for(engineer)
    started = client.post("/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": base.pk,
                                                  "config": {"max_steps": 2}}, format="json")
    assert started.status_code == 201, started.content
    assert client.post(f"/api/training-runs/{started.json()['id']}/cancel/").status_code == 200
    assert client.post(f"/api/projects/{project.pk}/members/", {"username": labeler.username, "role": "admin"},
                       format="json").status_code == 403
    assert Membership.objects.get(user=labeler).role == Membership.Role.LABELER


@pytest.fixture
def enqueued_runs(monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


# Creating projects ---------------------------------------------------------------------------------


def test_a_labeler_may_not_create_a_project_anywhere(client, client_for):
    labeler = member(ProjectFactory())
    assert client_for(labeler).post("/api/projects/", {"name": "Mine now"}, format="json").status_code == 403
    client.force_login(labeler)
    assert client.get("/projects/new/").status_code == 403
    assert client.post("/projects/new/", {"name": "Mine now", "overlap": 1, "lease_seconds": 600}).status_code == 403
    assert 'href="/projects/new/"' not in client.get("/").content.decode()
    assert not Project.objects.filter(name="Mine now").exists()


def test_the_permission_lets_a_user_create_projects_and_admin_them(client, client_for):
    user = UserFactory(username="founder")
    call_command("grant_project_creator", "founder")
    created = client_for(user).post("/api/projects/", {"name": "Fresh"}, format="json")
    assert created.status_code == 201 and created.json()["role"] == "admin"
    assert Membership.objects.get(user=user, project__name="Fresh").role == Membership.Role.ADMIN
    client.force_login(user)
    assert 'href="/projects/new/"' in client.get("/").content.decode()
    call_command("grant_project_creator", "founder", "--revoke")
    user = type(user).objects.get(pk=user.pk)  # a fresh object: has_perm caches
    assert client_for(user).post("/api/projects/", {"name": "Another"}, format="json").status_code == 403


def test_superusers_create_projects_and_the_permission_is_grantable_in_django_admin(client, client_for):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert client_for(root).post("/api/projects/", {"name": "Root's"}, format="json").status_code == 201
    client.force_login(root)
    page = client.get(f"/admin/auth/user/{root.pk}/change/").content.decode()
    permission = Permission.objects.get(codename="create_project")
    assert f'value="{permission.pk}"' in page and "Can create projects" in page
    creator = project_creator(UserFactory())
    assert creator.has_perm("annotation.create_project")


# The CLI asks the same table -------------------------------------------------------------------------


def test_the_train_command_refuses_a_labeler_acting_through_it(tmp_path):
    from django.core.management.base import CommandError

    from tests.training.labels import demonstrations_create

    project = ProjectFactory(slug="cli-roles")
    labeler = member(project, username="cli-labeler")
    model_version(name="tiny", kind="base", path="models/tiny")
    demonstrations_create(project=project, n=1)
    with pytest.raises(CommandError, match="admins and engineers"):
        call_command("train", "--kind", "sft", "--project", "cli-roles", "--base", "tiny",
                     "--user", labeler.username, "--no-follow")
    outsider = UserFactory(username="cli-outsider")
    with pytest.raises(CommandError, match="cli-outsider"):
        call_command("train", "--kind", "sft", "--project", "cli-roles", "--base", "tiny",
                     "--user", outsider.username, "--no-follow")
