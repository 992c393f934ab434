"""Every way of setting a password replaces the API token at once, cache included; tokens can expire."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.authentication import token_cache_key
from tests.factories import UserFactory

from .conftest import token_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-much-Better-passw0rd"


@pytest.fixture
def user():
    return UserFactory(username="olivia", email="olivia@example.com")


@pytest.fixture
def old_key(user):
    """A token that has just been used, so the cache holds it."""
    key = APIClient().post("/api/auth/token/", {"username": "olivia", "password": "pass-1234"}).json()["token"]
    assert token_client(key).get("/api/projects/").status_code == 200
    assert cache.get(token_cache_key(key)) is not None
    return key


def assert_rotated(user, old_key):
    response = token_client(old_key).get("/api/projects/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    new_key = Token.objects.get(user=user).key
    assert new_key != old_key
    assert token_client(new_key).get("/api/projects/").status_code == 200
    return new_key


def test_the_password_change_page_rotates_the_token(client, user, old_key):
    client.force_login(user)
    response = client.post("/account/password/", {
        "old_password": "pass-1234", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 302 and response["Location"] == "/account/"
    new_key = assert_rotated(user, old_key)
    # The new password fetches the new key; the page kept this browser logged in.
    issued = APIClient().post("/api/auth/token/", {"username": "olivia", "password": NEW_PASSWORD})
    assert issued.json()["token"] == new_key
    assert new_key in client.get("/account/").content.decode()


def test_a_wrong_old_password_changes_nothing(client, user, old_key):
    client.force_login(user)
    response = client.post("/account/password/", {
        "old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 200
    assert token_client(old_key).get("/api/projects/").status_code == 200


def test_a_reset_through_the_emailed_link_rotates_the_token(client, user, old_key, mailoutbox):
    response = client.post("/account/password/reset/", {"email": "olivia@example.com"})
    assert response.status_code == 302 and response["Location"] == "/account/password/reset/sent/"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["olivia@example.com"]
    link = re.search(r"https?://[^/\s]+(/account/password/reset/\S+/)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and "Set a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/account/password/reset/done/"
    assert_rotated(user, old_key)
    # The link works once.
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_django_admins_password_form_rotates_the_token(client, user, old_key):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(f"/admin/auth/user/{user.pk}/password/", {
        "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
    })
    assert response.status_code == 302
    assert_rotated(user, old_key)


def test_disabling_password_login_in_admin_rotates_the_token(client, user, old_key):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(f"/admin/auth/user/{user.pk}/password/", {"usable_password": "false", "unset-password": "1"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert_rotated(user, old_key)


def test_set_password_and_save_in_code_rotates_the_token(user, old_key):
    user.set_password(NEW_PASSWORD)
    user.save()
    assert_rotated(user, old_key)


def test_manage_py_changepassword_rotates_the_token(user, old_key, monkeypatch):
    from django.contrib.auth.management.commands import changepassword

    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": NEW_PASSWORD)
    call_command("changepassword", "olivia")
    assert_rotated(user, old_key)


def test_other_saves_and_a_hash_upgrade_at_login_keep_the_token(client, user, old_key, settings):
    user.first_name = "Olivia"
    user.save()
    # A login that re-hashes the same password with the preferred hasher is no password change.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    old_hash = PBKDF2PasswordHasher().encode("pass-1234", "somesalt", iterations=1)
    type(user).objects.filter(pk=user.pk).update(password=old_hash)
    assert client.post("/login/", {"username": "olivia", "password": "pass-1234"}).status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("md5$"), "the login upgraded the hash"
    assert Token.objects.get(user=user).key == old_key
    assert token_client(old_key).get("/api/projects/").status_code == 200


def test_a_request_that_read_a_key_before_it_was_deleted_cannot_cache_it_again(user, old_key):
    token = Token.objects.get(key=old_key)
    stale = (user, token.created)
    token.delete()
    # What a request in another process does if it read the row just before the delete:
    assert cache.add(token_cache_key(old_key), stale, 300) is False
    assert token_client(old_key).get("/api/projects/").status_code == 401


def test_a_password_change_does_not_hand_out_a_token_to_users_without_one(user):
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not Token.objects.filter(user=user).exists()


@pytest.fixture
def ttl(settings):
    settings.TOKEN_TTL_DAYS = 30
    return timedelta(days=30)


def test_an_expired_token_gets_401_and_the_token_endpoint_issues_a_new_one(user, ttl, monkeypatch):
    issued = APIClient().post("/api/auth/token/", {"username": "olivia", "password": "pass-1234"}).json()
    old_key = issued["token"]
    created = Token.objects.get(key=old_key).created
    assert issued["expires_at"].startswith((created + ttl).strftime("%Y-%m-%dT%H:%M"))
    assert token_client(old_key).get("/api/projects/").status_code == 200  # cached now

    later = timezone.now() + ttl + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    expired = token_client(old_key).get("/api/projects/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"] and "POST /api/auth/token/" in expired.json()["detail"]

    # The expired key in the header does not stand in the way of getting a new one.
    client = token_client(old_key)
    fresh = client.post("/api/auth/token/", {"username": "olivia", "password": "pass-1234"})
    assert fresh.status_code == 200 and fresh.json()["token"] != old_key
    assert token_client(fresh.json()["token"]).get("/api/projects/").status_code == 200
    assert token_client(old_key).get("/api/projects/").json()["detail"] == "Invalid token."


def test_a_live_token_is_returned_again_and_unset_ttl_means_never(user, settings, monkeypatch):
    settings.TOKEN_TTL_DAYS = 0
    first = APIClient().post("/api/auth/token/", {"username": "olivia", "password": "pass-1234"}).json()
    assert first["expires_at"] is None
    later = timezone.now() + timedelta(days=3650)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert token_client(first["token"]).get("/api/projects/").status_code == 200
    again = APIClient().post("/api/auth/token/", {"username": "olivia", "password": "pass-1234"}).json()
    assert again["token"] == first["token"]
