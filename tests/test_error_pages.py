"""Refusals and misses on pages look like the product and say why, in the role's own words."""

import pytest

from annotation.models import Membership
from annotation.roles import REFUSALS, Action
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db


def test_a_403_page_says_which_roles_may(client):
    project = ProjectFactory()
    client.force_login(member(project, Membership.Role.LABELER))
    response = client.get(f"/projects/{project.pk}/dashboard/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "Not allowed" in html and REFUSALS[Action.DASHBOARD].replace("'", "&#x27;") in html
    assert 'href="/account/"' in html and "css/app.css" in html


def test_a_404_page_names_the_path_and_reveals_nothing(client):
    other = ProjectFactory(name="Someone else's secret")
    client.force_login(member(ProjectFactory(), Membership.Role.ADMIN))
    response = client.get(f"/projects/{other.pk}/settings/")
    html = response.content.decode()
    assert response.status_code == 404
    assert f"/projects/{other.pk}/settings/" in html and "secret" not in html


def test_a_500_page_is_ours():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html and "<script" not in html and "style=" not in html


def test_every_page_has_the_training_area_in_one_top_bar_for_those_who_train(client):
    project = ProjectFactory()
    engineer = member(project, Membership.Role.ENGINEER)
    labeler = member(project)
    client.force_login(engineer)
    for url in ("/", f"/projects/{project.pk}/dashboard/", "/training/runs/", "/account/"):
        html = client.get(url).content.decode()
        assert all(f'href="/training/{area}/"' in html for area in ("runs", "models", "generation", "evaluations")), url
        assert "favicon.svg" in html
    client.force_login(labeler)
    assert 'href="/training/' not in client.get("/").content.decode()


def test_the_api_root_lists_the_endpoints(client):
    body = client.get("/api/").json()
    assert body["schema"].endswith("/api/schema/") and "submit" in body["endpoints"]["labeling"]
