"""In Chromium, under a strict Content-Security-Policy: the lockout message, the account page and its token."""

import pytest
from axes.models import AccessAttempt
from rest_framework.authtoken.models import Token

from tests.browser import launch_browser
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"


def with_strict_csp(route):
    """Serve every page with a CSP that forbids inline scripts, styles and handlers."""
    response = route.fetch(max_redirects=0)
    headers = {**response.headers, "content-security-policy": STRICT_CSP}
    route.fulfill(response=response, headers=headers)


def test_lockout_message_and_token_copy_under_a_strict_csp(live_server, settings):
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(username="rosa")
    base = live_server.url
    with launch_browser() as browser:
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        violations = []
        page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
        page.on("pageerror", lambda exc: violations.append(str(exc)))
        page.route(f"{base}/**", with_strict_csp)

        for _ in range(2):
            page.goto(f"{base}/login/")
            page.fill("#id_username", "rosa")
            page.fill("#id_password", "wrong")
            page.click("button[type=submit]")
        alert = page.locator(".login-card [role=alert]")
        assert "Try again in 15 minutes" in alert.inner_text()
        assert page.locator("#id_username").input_value() == "rosa", "the form keeps the username"

        AccessAttempt.objects.all().delete()  # an admin unlocks the account
        # Straight to the account page (the project list is not this test's page), then by the nav link.
        page.goto(f"{base}/login/?next=/account/")
        page.fill("#id_username", "rosa")
        page.fill("#id_password", "pass-1234")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/account/")
        page.click("a.who")
        page.wait_for_selector("h1:has-text('Your account')")
        page.click("button:has-text('Create a token')")
        page.wait_for_selector("#token-key")
        key = Token.objects.get(user__username="rosa").key
        assert page.input_value("#token-key") == key
        page.click("button[data-copy=token-key]")
        page.wait_for_selector("button[data-copy=token-key]:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == key
        context.close()
    assert violations == []
