"""Playwright helpers for browser tests: the system's Chromium (never a downloaded one) and a login.

    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "alice", "pass-1234")
"""

import contextlib
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000


@contextlib.contextmanager
def launch_browser(**launch_kwargs) -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """Start headless Chromium from /usr/bin/chromium; closes it (and Playwright) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **launch_kwargs)
        try:
            yield browser
        finally:
            browser.close()


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
