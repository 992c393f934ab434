"""Password reset by email and password change: no account enumeration, the house's pages, no inline code."""

import re

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_reset_does_not_reveal_whether_an_email_exists(client, mailoutbox):
    UserFactory(username="quinn", email="quinn@example.com")
    known = client.post("/account/password/reset/", {"email": "quinn@example.com"})
    unknown = client.post("/account/password/reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/account/password/reset/sent/"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["quinn@example.com"]
    page = client.get("/account/password/reset/sent/").content.decode()
    assert "If an account uses that address" in page


def test_the_reset_mail_links_to_this_site_and_names_the_account(client, mailoutbox):
    UserFactory(username="quinn", email="quinn@example.com")
    client.post("/account/password/reset/", {"email": "quinn@example.com"})
    mail = mailoutbox[0]
    assert mail.subject == "Reset your FeedbackLoop password"
    assert "Hello quinn," in mail.body
    assert re.search(r"http://testserver/account/password/reset/[\w-]+/[\w-]+/", mail.body)


def test_a_reset_lets_a_locked_out_owner_back_in(client, mailoutbox, limit):
    UserFactory(username="quinn", email="quinn@example.com")
    for n in range(limit):
        locked = client.post("/login/", {"username": "quinn", "password": "wrong"}, REMOTE_ADDR=f"10.7.0.{n}")
    assert locked.status_code == 429
    client.post("/account/password/reset/", {"email": "quinn@example.com"})
    link = re.search(r"https?://[^/\s]+(/account/password/reset/\S+/)", mailoutbox[0].body).group(1)
    set_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_url, {"new_password1": "a-much-Better-passw0rd", "new_password2": "a-much-Better-passw0rd"})
    response = client.post("/login/", {"username": "quinn", "password": "a-much-Better-passw0rd"}, REMOTE_ADDR="10.7.1.1")
    assert response.status_code == 302


def test_a_forged_reset_link_is_refused(client):
    user = UserFactory(username="quinn", email="quinn@example.com")
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    page = client.get(f"/account/password/reset/{uid}/abc-123/", follow=True).content.decode()
    assert "This link no longer works" in page


def test_the_login_page_links_to_the_reset(client):
    page = client.get("/login/").content.decode()
    assert '<a href="/account/password/reset/">Forgot your password?</a>' in page


def test_password_change_needs_a_login(client):
    response = client.get("/account/password/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


INLINE_CODE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE), "inline <script>"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "style= attribute"),
    (re.compile(r"<style", re.IGNORECASE), "<style> block"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "on* handler"),
]


def assert_no_inline_code(html: str, url: str) -> None:
    for pattern, what in INLINE_CODE:
        assert not pattern.search(html), f"{url} has an {what}: a strict CSP would block it"


def test_account_pages_have_no_inline_scripts_styles_or_handlers(client, settings, limit):
    user = UserFactory(username="quinn", email="quinn@example.com")
    anonymous = ["/login/", "/account/password/reset/", "/account/password/reset/sent/", "/account/password/reset/done/"]
    for url in anonymous:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_inline_code(response.content.decode(), url)
    for _ in range(limit):
        locked = client.post("/login/", {"username": "quinn", "password": "wrong"})
    assert locked.status_code == 429
    assert_no_inline_code(locked.content.decode(), "the locked-out login page")
    admin_locked = client.post("/admin/login/", {"username": "quinn", "password": "wrong"})
    assert admin_locked.status_code == 429
    assert_no_inline_code(admin_locked.content.decode(), "the locked-out page")
    client.force_login(user)
    client.post("/account/token/create/")
    for url in ["/account/", "/account/password/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_inline_code(response.content.decode(), url)
