"""Playwright helpers for browser tests: the system's Chromium (never a downloaded one) and a login.

    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "alice", "pass-1234")
"""

import contextlib
import os
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000


@contextlib.contextmanager
def launch_browser(**launch_kwargs) -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """Start headless Chromium from /usr/bin/chromium; closes it (and Playwright) on exit.

    Playwright's sync API runs an event loop in this thread, so Django would refuse ORM calls made
    inside the block (SynchronousOnlyOperation). The test thread never awaits anything itself, so
    those calls are safe: allow them while the browser is open, then restore the setting. While the
    loop runs, Django hands this thread a separate database connection (asgiref's Local): it does
    not see an open test transaction, so ORM calls inside the block need
    `django_db(transaction=True)`, and it is closed on exit so the test database can be dropped.
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **launch_kwargs)
            try:
                yield browser
            finally:
                browser.close()
                _close_loop_db_connections()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _close_loop_db_connections() -> None:
    from django.conf import settings

    if settings.configured:  # the helper also works in scripts that never set Django up
        from django.db import connections

        connections.close_all()


def login(page, base_url: str, username: str, password: str) -> None:
    """Log in through the /login/ form and wait until the app has redirected away from it."""
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base_url.rstrip('/')}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if "/login/" in page.url:
        raise AssertionError(f"Login as {username!r} failed: still on {page.url}")
