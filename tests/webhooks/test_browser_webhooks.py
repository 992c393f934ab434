"""The webhook pages in Chromium: an admin reaches them from the project's tabs, adds an endpoint, copies
its secret (shown once), reads the delivery log, redelivers, rotates the secret and ends its grace; no serious
axe violation on either page."""

import os

import pytest

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, member
from tests.test_browser_a11y import violations
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_an_endpoint_reads_its_log_redelivers_and_rotates_its_secret(live_server, settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True  # the endpoint below is on loopback
    queued = []
    monkeypatch.setattr("webhooks.services.job_enqueue", lambda *, task_name, args: queued.append((task_name, args)))
    project = ProjectFactory(name="Hooked")
    member(project, Membership.Role.ADMIN, username="hook-admin")
    base = live_server.url
    found = {}
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, base, "hook-admin", "pass-1234")
        page.goto(f"{base}/projects/{project.pk}/settings/")
        page.click("nav.tabs >> text=Webhooks")
        page.wait_for_selector("#add-endpoint")
        page.fill("#id_url", "http://127.0.0.1:9/hook")
        page.fill("#id_description", "Our CI")
        page.check("input[name=events][value='annotation.created']")
        page.check("input[name=events][value='run.failed']")
        page.click("#add-endpoint button[type=submit]")
        page.wait_for_selector("#secret-value")
        endpoint = WebhookEndpoint.objects.get()
        assert page.inner_text("#secret-value") == endpoint.secret
        assert endpoint.events == ["annotation.created", "run.failed"] and endpoint.description == "Our CI"

        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, project=project, event_id="msg_browser", event_type="run.failed",
            payload={"type": "run.failed", "data": {"id": 7}}, status="failed", attempts=1, last_status_code=500,
            last_response_ms=41,
        )
        WebhookAttempt.objects.create(delivery=delivery, attempt=1, status_code=500, response_ms=41,
                                      started_at=delivery.created_at, finished_at=delivery.created_at)
        page.reload()
        assert page.locator("#new-secret").count() == 0  # shown once
        row = page.locator(f"tr[data-delivery='{delivery.pk}']")
        assert "41 ms" in row.inner_text() and "500" in row.inner_text()
        row.locator("button", has_text="Redeliver").click()
        page.wait_for_selector(".messages")
        assert "queued again" in page.inner_text(".messages")
        assert page.locator(f"tr[data-delivery='{delivery.pk}']").get_attribute("data-status") == "pending"

        page.on("dialog", lambda dialog: dialog.accept())  # the forms' data-confirm prompts
        page.click("#endpoint-secret button:has-text('Rotate secret')")
        page.wait_for_selector("#previous-secret-grace")
        endpoint.refresh_from_db()
        assert page.inner_text("#secret-value") == endpoint.secret and endpoint.previous_secret
        assert "stays valid until" in page.inner_text("#previous-secret-grace")

        # axe runs as an injected script, which the page's CSP refuses: a context that bypasses it.
        checker = browser.new_context(bypass_csp=True, viewport={"width": 1366, "height": 900}).new_page()
        login(checker, base, "hook-admin", "pass-1234")
        for path in (f"/projects/{project.pk}/webhooks/", f"/projects/{project.pk}/webhooks/{endpoint.pk}/"):
            checker.goto(f"{base}{path}")
            checker.wait_for_load_state("load")
            found[path] = violations(checker)
            if os.environ.get("FEEDBACKLOOP_SCREENSHOTS"):
                checker.screenshot(path=f"{os.environ['FEEDBACKLOOP_SCREENSHOTS']}/webhooks-{path.count('/')}.png",
                                   full_page=True)
        page.click("#endpoint-secret button:has-text('End the grace now')")
        page.wait_for_selector(".messages")
        assert page.locator("#previous-secret-grace").count() == 0
        assert WebhookEndpoint.objects.get().previous_secret == ""
    assert queued == [("webhooks.deliver", [delivery.pk])]
    assert not {where: v for where, v in found.items() if v}, found
