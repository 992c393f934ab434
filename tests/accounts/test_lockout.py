"""Failed logins lock out, per account and per address, on the login page and the token API alike."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

COOLOFF = timedelta(minutes=15)


def page_login(client, username, password, address):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def api_login(username, password, address):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


def assert_page_locked(response, minutes=15):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= minutes * 60
    page = response.content.decode()
    assert f"Try again in {minutes} minute" in page
    assert 'id="id_username"' in page, "the message is shown in the login form"


def assert_api_locked(response, minutes=15):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= minutes * 60
    assert f"Try again in {minutes} minute" in response.json()["detail"]


def age_attempts(by: timedelta) -> None:
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - by)


def test_login_page_locks_an_account_tried_from_many_addresses(client, limit):
    UserFactory(username="alice")
    UserFactory(username="bob")
    for n in range(limit - 1):
        response = page_login(client, "alice", "wrong", f"10.0.0.{n}")
        assert response.status_code == 200 and "didn&#x27;t match" in response.content.decode()
    assert_page_locked(page_login(client, "alice", "wrong", "10.0.0.99"))
    # The right password from a fresh address does not get in while the account is locked...
    assert_page_locked(page_login(client, "alice", "pass-1234", "10.0.1.1"))
    assert "_auth_user_id" not in client.session
    # ...but other accounts are not affected.
    assert page_login(client, "bob", "pass-1234", "10.0.1.2").status_code == 302


def test_login_page_locks_an_address_trying_many_accounts(client, limit):
    UserFactory(username="carol")
    for n in range(limit - 1):
        assert page_login(client, f"victim{n}", "wrong", "10.0.0.7").status_code == 200
    assert_page_locked(page_login(client, "victim-last", "wrong", "10.0.0.7"))
    # Even a valid login is refused from that address; from another one it works.
    assert_page_locked(page_login(client, "carol", "pass-1234", "10.0.0.7"))
    assert page_login(client, "carol", "pass-1234", "10.0.0.8").status_code == 302


def test_unknown_and_known_accounts_lock_alike(client, limit):
    """A lockout must not tell an attacker which usernames exist."""
    UserFactory(username="dave")
    for username, address in (("dave", "10.0.2.1"), ("nobody-here", "10.0.3.1")):
        for _ in range(limit - 1):
            assert page_login(client, username, "wrong", address).status_code == 200
        assert_page_locked(page_login(client, username, "wrong", address))


def test_a_success_before_the_limit_resets_the_account(client, limit):
    UserFactory(username="erin")
    for _ in range(limit - 1):
        assert page_login(client, "erin", "wrong", "10.0.0.1").status_code == 200
    assert page_login(client, "erin", "pass-1234", "10.0.0.2").status_code == 302
    client.post("/logout/")
    for _ in range(limit - 1):
        assert page_login(client, "erin", "wrong", "10.0.0.3").status_code == 200
    assert_page_locked(page_login(client, "erin", "wrong", "10.0.0.3"))


def test_logging_into_your_own_account_does_not_reset_your_address(client, limit):
    """Someone guessing other people's passwords cannot clear their address's count by logging in."""
    UserFactory(username="mallory")
    for n in range(limit - 1):
        assert page_login(client, f"target{n}", "wrong", "10.9.9.9").status_code == 200
    # A success is allowed (the address is below the limit) and resets mallory's failures only.
    assert page_login(client, "mallory", "pass-1234", "10.9.9.9").status_code == 302
    client.post("/logout/")
    assert_page_locked(page_login(client, "target-next", "wrong", "10.9.9.9"))


def test_the_lock_ends_when_the_message_says(client, limit):
    UserFactory(username="frank")
    for _ in range(limit):
        response = page_login(client, "frank", "wrong", "10.0.0.1")
    assert_page_locked(response)
    # Retrying while locked out does not push the time back.
    age_attempts(COOLOFF - timedelta(seconds=50))
    assert_page_locked(page_login(client, "frank", "wrong", "10.0.0.1"), minutes=1)
    assert_page_locked(page_login(client, "frank", "pass-1234", "10.0.0.1"), minutes=1)
    age_attempts(timedelta(seconds=51))
    assert page_login(client, "frank", "pass-1234", "10.0.0.1").status_code == 302


def test_token_api_locks_per_account_with_429_and_retry_after(limit):
    UserFactory(username="grace")
    for n in range(limit - 1):
        response = api_login("grace", "wrong", f"10.1.0.{n}")
        assert response.status_code == 400
    assert_api_locked(api_login("grace", "wrong", "10.1.0.99"))
    assert_api_locked(api_login("grace", "pass-1234", "10.1.1.1"))
    assert not AccessAttempt.objects.filter(ip_address="10.1.1.1").exists(), "attempts while locked are not counted"


def test_token_api_locks_per_address(limit):
    UserFactory(username="heidi")
    for n in range(limit - 1):
        assert api_login(f"someone{n}", "wrong", "10.2.0.1").status_code == 400
    assert_api_locked(api_login("someone-else", "wrong", "10.2.0.1"))
    assert_api_locked(api_login("heidi", "pass-1234", "10.2.0.1"))
    assert api_login("heidi", "pass-1234", "10.2.0.2").status_code == 200


def test_token_api_success_resets_the_account(limit):
    UserFactory(username="ivan")
    for _ in range(limit - 1):
        assert api_login("ivan", "wrong", "10.3.0.1").status_code == 400
    assert api_login("ivan", "pass-1234", "10.3.0.2").status_code == 200
    for _ in range(limit - 1):
        assert api_login("ivan", "wrong", "10.3.0.3").status_code == 400
    assert_api_locked(api_login("ivan", "wrong", "10.3.0.3"))


def test_page_and_api_share_the_count(client, limit):
    UserFactory(username="judy")
    for _ in range(limit - 1):
        assert page_login(client, "judy", "wrong", "10.4.0.1").status_code == 200
    assert_api_locked(api_login("judy", "wrong", "10.4.0.2"))
    assert_page_locked(page_login(client, "judy", "pass-1234", "10.4.0.3"))


def test_admin_login_is_locked_out_too(client, limit):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(limit):
        response = client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.5.0.1")
    assert response.status_code == 429
    assert "Try again in 15 minutes" in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 15 * 60


def test_requests_without_credentials_are_not_counted(client, limit):
    for _ in range(limit + 1):
        assert client.post("/login/", {"username": "", "password": ""}, REMOTE_ADDR="10.6.0.1").status_code == 200
        assert APIClient().post("/api/auth/token/", {}, REMOTE_ADDR="10.6.0.1").status_code == 400
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize("data", [
    {"username": "x" * 300, "password": "p"},
    {"username": "a\x00b", "password": "p"},
    {"username": {"a": 1}, "password": "p"},
    ["not", "an", "object"],
])
def test_odd_token_requests_are_400_and_not_counted(data):
    response = APIClient().post("/api/auth/token/", data, format="json")
    assert response.status_code == 400
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_an_overlong_username_on_a_login_form_is_a_failed_login_not_a_500(client, url, limit):
    for _ in range(limit - 1):
        assert client.post(url, {"username": "y" * 300, "password": "p"}).status_code == 200
    assert client.post(url, {"username": "y" * 300, "password": "p"}).status_code == 429
    assert AccessAttempt.objects.get().username == "y" * 255
