"""The account page: who you are, your projects and roles, and your API token (create, rotate, revoke)."""

import re
from datetime import timedelta

import pytest
from rest_framework.authtoken.models import Token

from annotation.models import Membership
from tests.factories import MembershipFactory, ProjectFactory, member

from .conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(client):
    user = member(ProjectFactory(name="Helpful chat"), role=Membership.Role.ADMIN, username="paula", email="paula@example.com")
    MembershipFactory(project=ProjectFactory(name="Math tutor"), user=user)
    member(ProjectFactory(name="Not mine"), username="someone-else")
    client.force_login(user)
    return user


def test_the_page_needs_a_login(client):
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/account/"


def test_the_page_shows_the_user_their_projects_and_roles(client, user):
    page = client.get("/account/").content.decode()
    assert 'data-field="username">paula<' in page and "paula@example.com" in page
    rows = re.findall(r"<td>(.*?)</td>\s*<td><span class=\"badge role-(\w+)\">", page)
    assert rows == [("Helpful chat", "admin"), ("Math tutor", "labeler")]
    assert "Not mine" not in page
    assert 'href="/account/password/"' in page and "Change password" in page
    assert "<input" not in page.split('id="projects-title"')[1], "projects and roles are read-only"


def test_the_nav_links_to_the_account_page(client, user):
    assert 'href="/account/"' in client.get("/").content.decode()


def test_create_rotate_and_revoke_the_token(client, user):
    page = client.get("/account/").content.decode()
    assert "You have no API token." in page and 'action="/account/token/create/"' in page

    assert client.post("/account/token/create/")["Location"] == "/account/"
    key = Token.objects.get(user=user).key
    page = client.get("/account/").content.decode()
    assert f'value="{key}"' in page and "Never expires." in page
    assert token_client(key).get("/api/projects/").status_code == 200  # cached now

    client.post("/account/token/rotate/")
    rotated = Token.objects.get(user=user).key
    assert rotated != key
    assert token_client(key).get("/api/projects/").status_code == 401
    assert f'value="{rotated}"' in client.get("/account/").content.decode()
    assert token_client(rotated).get("/api/projects/").status_code == 200

    response = client.post("/account/token/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    assert not Token.objects.filter(user=user).exists()
    assert token_client(rotated).get("/api/projects/").status_code == 401


def test_token_actions_are_post_only_and_need_csrf(user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.get("/account/token/create/").status_code == 405
    assert strict.post("/account/token/create/").status_code == 403
    assert not Token.objects.filter(user=user).exists()


def test_the_page_shows_when_the_token_expires(client, user, settings):
    settings.TOKEN_TTL_DAYS = 7
    client.post("/account/token/create/")
    token = Token.objects.get(user=user)
    assert f"Expires {(token.created + timedelta(days=7)):%Y-%m-%d %H:%M} UTC" in (
        client.get("/account/").content.decode()
    )
    Token.objects.filter(pk=token.pk).update(created=token.created - timedelta(days=8))
    page = client.get("/account/").content.decode()
    assert 'data-token-state="expired"' in page
    # "Create" replaces an expired key.
    client.post("/account/token/create/")
    assert Token.objects.get(user=user).key != token.key
