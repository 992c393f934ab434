"""launch_browser fails the test that opened a page the Content-Security-Policy refused something on."""

import pytest

from tests.browser import launch_browser

pytestmark = pytest.mark.browser

POLICY = "default-src 'self'; script-src 'self'; style-src 'self'"
ORIGIN = "http://csp-guard.test"
PAGES = {
    "/clean": '<p>fine</p><script src="/ok.js"></script>',
    "/ok.js": 'document.querySelector("p").style.color = "green";',  # the CSSOM: allowed
    "/attr": '<p style="color: red">inline style attribute</p>',
    "/handler": '<button onclick="1">inline handler</button><script src="/click.js"></script>',
    "/click.js": 'document.querySelector("button").click();',
    "/script-attr": '<p id="p"></p><script src="/set-style.js"></script>',
    "/set-style.js": 'document.getElementById("p").setAttribute("style", "color: red");',
}


def serve(route):
    path = route.request.url.removeprefix(ORIGIN)
    kind = "application/javascript" if path.endswith(".js") else "text/html"
    route.fulfill(status=200, body=PAGES[path], headers={"Content-Type": kind, "Content-Security-Policy": POLICY})


def open_pages(*paths, fresh_page=False):
    with launch_browser() as browser:
        page = browser.new_page() if fresh_page else browser.new_context().new_page()
        page.route(f"{ORIGIN}/**", serve)
        for path in paths:
            page.goto(ORIGIN + path)
            page.wait_for_load_state("load")
        return browser


def test_a_clean_page_passes():
    open_pages("/clean")


@pytest.mark.parametrize("path, directive", [
    ("/attr", "style-src"), ("/handler", "script-src"), ("/script-attr", "style-src"),
])
def test_any_violation_fails_the_block(path, directive):
    with pytest.raises(AssertionError, match="Content-Security-Policy refused") as failure:
        open_pages("/clean", path, fresh_page=path == "/attr")  # browser.new_page() is watched too
    assert directive in str(failure.value) and path in str(failure.value)


def test_the_failure_of_the_block_itself_comes_first():
    with pytest.raises(ZeroDivisionError):
        with launch_browser() as browser:
            page = browser.new_context().new_page()
            page.route(f"{ORIGIN}/**", serve)
            page.goto(ORIGIN + "/attr")
            1 / 0
