"""Playwright helpers for browser tests: the system's Chromium (never a downloaded one) and a login.

    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "alice", "pass-1234")

Every page that a test opens runs under the Content-Security-Policy, and any violation fails the
test: `launch_browser` watches every context and page it creates (see CspGuard), and raises at the
end of the block if the browser refused anything. `browser.csp_violations` lists them so far.
Give `page.wait_for_function` a function ("() => ..."), not a bare expression: Playwright evaluates
an expression with eval, which the policy (no 'unsafe-eval') refuses.
"""

import contextlib
import os
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000

_BINDING = "__feedbackloopCspViolation"
# Runs in every document before its own scripts, so that violations during parsing are seen too.
_RECORDER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.%s({
    page: document.location.href, directive: event.effectiveDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
  });
});
""" % _BINDING


class CspGuard:
    """Collects the CSP violations of every context it watches, from two independent sources.

    The `securitypolicyviolation` DOM event names the directive and what was blocked; Chromium's
    console message ("Refused to apply inline style because it violates ...") also covers what a
    page's event listener cannot report. Either one alone fails the test.
    """

    def __init__(self) -> None:
        self.violations: list[str] = []

    def watch(self, context) -> None:
        if getattr(context, "_csp_guarded", False):
            return
        context._csp_guarded = True
        context.expose_binding(_BINDING, lambda source, v: self.violations.append(
            f"{v['page']}: {v['directive']} refused {v['blocked'] or 'inline'}"
            f" (at {v['source'] or 'the document'}:{v['line']}{', ' + repr(v['sample']) if v['sample'] else ''})"
        ))
        context.add_init_script(_RECORDER)
        context.on("console", self._on_console)

    def _on_console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.violations.append(f"{message.page.url if message.page else '?'}: console: {text}")

    def settle(self, browser) -> None:
        """Let every open page run its queued tasks, so violation events already raised get reported."""
        for context in browser.contexts:
            for page in context.pages:
                with contextlib.suppress(Exception):  # a page that is closing reports nothing more
                    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")

    def check(self) -> None:
        if self.violations:
            listed = "\n  ".join(dict.fromkeys(self.violations))
            raise AssertionError(f"The Content-Security-Policy refused something:\n  {listed}")


class GuardedBrowser:
    """The Playwright Browser, except that every context and page it creates is watched by a CspGuard."""

    def __init__(self, browser, guard: CspGuard) -> None:
        self._browser = browser
        self._guard = guard

    @property
    def csp_violations(self) -> list[str]:
        self._guard.settle(self._browser)
        return list(self._guard.violations)

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        self._guard.watch(context)
        return context

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)  # a context of its own, still at about:blank
        self._guard.watch(page.context)
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


@contextlib.contextmanager
def launch_browser(**launch_kwargs) -> Iterator[GuardedBrowser]:
    """Start headless Chromium from /usr/bin/chromium; closes it (and Playwright) on exit.

    On a clean exit from the block, fails if any page violated the Content-Security-Policy.

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
    guard = CspGuard()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **launch_kwargs)
            try:
                yield GuardedBrowser(browser, guard)
                guard.settle(browser)
            finally:
                browser.close()
                _close_loop_db_connections()
        guard.check()  # reached only when the block itself succeeded, so its own failure stays first
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
