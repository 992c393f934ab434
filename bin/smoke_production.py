"""The browser half of the production smoke (bin/smoke-production starts the servers and runs this).

Against gunicorn with config.settings.production: the admin and a labeler log in, the labeler writes
a demonstration with the keyboard, and the admin starts a short SFT run from the new-run page and
watches it succeed on the run page, then opens every other page. Every page runs under the Content-Security-Policy, and any
violation fails the smoke (tests/browser.py). Exits non-zero, with the reason, on any failure.

    python bin/smoke_production.py --base-url http://127.0.0.1:8765   # passwords: $DEMO_PASSWORD
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import launch_browser, login  # noqa: E402

RUN_TIMEOUT_MS = 150_000
SFT_CONFIG = {"max_steps": "3", "batch_size": "1", "logging_steps": "1", "max_length": "64", "save_steps": "100"}


def step(message: str) -> None:
    print(f"[smoke] {message}", flush=True)


def check_session_cookie(context, base_url: str) -> None:
    """Production's cookies are Secure and HttpOnly; Chromium keeps Secure cookies on http://127.0.0.1."""
    cookies = {c["name"]: c for c in context.cookies(base_url)}
    session = cookies.get("sessionid")
    assert session, f"no session cookie after logging in: {sorted(cookies)}"
    assert session["secure"] and session["httpOnly"], f"the session cookie is not Secure and HttpOnly: {session}"
    assert cookies["csrftoken"]["secure"], "the CSRF cookie is not Secure"


def check_headers(page, base_url: str) -> None:
    """The pages come with the strict CSP and the other security headers production promises."""
    response = page.goto(f"{base_url}/")
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert part in policy, f"the Content-Security-Policy lacks {part!r}: {policy!r}"
    assert headers.get("x-content-type-options") == "nosniff" and headers.get("x-frame-options") == "DENY", headers


def label_one_demonstration(page, base_url: str) -> int:
    """The labeler opens the demo project from the project list and submits one demonstration."""
    page.goto(f"{base_url}/")
    page.click("a:has-text('Write demonstrations')")
    page.wait_for_selector("#label-app[data-ready=true]")
    task_id = page.get_attribute("#label-app", "data-task-id")
    project_id = int(re.search(r"/projects/(\d+)/label/", page.url).group(1))
    assert page.evaluate("() => document.activeElement.id") == "demo-text"
    page.keyboard.type("A prime number is a whole number above 1 that only 1 and itself divide evenly.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "(before) => document.querySelector('#empty-state') ||"
        " (document.querySelector('#label-app[data-ready=true]') &&"
        "  document.querySelector('#label-app').dataset.taskId !== before)",
        arg=task_id,
    )
    assert page.text_content("#done-today").strip() == "1", "the submitted demonstration was not counted"
    return project_id


def start_sft_run(page, base_url: str, project_id: int) -> str:
    """The admin starts a short SFT run on the tiny base model from the form; returns the run page's URL."""
    page.goto(f"{base_url}/training/runs/new/?project={project_id}")
    assert page.is_checked("input[name=kind][value=sft]")
    tiny = page.locator("#id_base_model option", has_text="tiny").first.get_attribute("value")
    page.select_option("#id_base_model", tiny)
    page.click("[data-config-section=advanced] summary")
    for name, value in SFT_CONFIG.items():
        page.fill(f"#id_config-{name}", value)
    page.click("#run-form button[type=submit]")
    try:
        page.wait_for_url(re.compile(r"/training/runs/\d+/$"))
    except Exception:
        problems = page.locator(".field-error, .form-errors").all_text_contents()
        raise AssertionError(f"the new-run form did not start the run: {problems or page.url}") from None
    return page.url


def watch_run_succeed(page) -> None:
    page.wait_for_function(
        "() => ['Succeeded', 'Failed', 'Cancelled'].includes("
        "document.querySelector('[data-role=status]').textContent.trim())",
        timeout=RUN_TIMEOUT_MS,
    )
    status = page.text_content("[data-role=status]").strip()
    assert status == "Succeeded", f"the run ended {status}:\n{page.text_content('[data-role=log]')}"
    assert page.get_attribute("[data-role=progress]", "value") == "100.0"
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-loss')")
    points = page.evaluate("() => Chart.getChart('chart-loss').data.datasets[0].data.length")
    assert points >= 1, "the loss chart has no points"


def walk_pages(page, base_url: str, project_id: int) -> None:
    """The admin's other pages, served with production's hashed, compressed static files."""
    paths = [f"/projects/{project_id}/{section}/" for section in ("dashboard", "import", "settings", "export")]
    paths += ["/projects/new/", "/training/runs/", "/training/models/", "/training/generation/",
              "/training/generation/new/", "/training/evaluations/", "/training/evaluations/new/",
              f"/training/projects/{project_id}/leaderboard/", "/admin/", "/admin/annotation/project/",
              f"/admin/annotation/project/{project_id}/change/", "/api/docs/"]
    for path in paths:
        response = page.goto(base_url + path)
        assert response.ok, f"{path} answered {response.status}"
        page.wait_for_load_state("load")
    page.wait_for_function("() => document.querySelectorAll('.swagger-ui .opblock').length > 10")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--admin", default="demo-admin")
    parser.add_argument("--labeler", default="demo-labeler")
    args = parser.parse_args()
    password = os.environ["DEMO_PASSWORD"]
    base = args.base_url.rstrip("/")
    started = time.monotonic()
    with launch_browser() as browser:
        errors: list[str] = []
        admin = browser.new_context(viewport={"width": 1360, "height": 900})
        labeler = browser.new_context(viewport={"width": 1360, "height": 900})
        for context in (admin, labeler):
            context.on("weberror", lambda error: errors.append(str(error.error)))
        admin_page, labeler_page = admin.new_page(), labeler.new_page()

        step(f"admin {args.admin} logs in")
        login(admin_page, base, args.admin, password)
        check_session_cookie(admin, base)
        check_headers(admin_page, base)
        step(f"labeler {args.labeler} logs in and writes a demonstration")
        login(labeler_page, base, args.labeler, password)
        project_id = label_one_demonstration(labeler_page, base)
        step("the admin starts a 3-step SFT run from the new-run page")
        run_url = start_sft_run(admin_page, base, project_id)
        step(f"the run page follows it: {run_url}")
        watch_run_succeed(admin_page)
        step("the admin opens every other page")
        walk_pages(admin_page, base, project_id)
        assert errors == [], f"JavaScript errors: {errors}"
        violations = browser.csp_violations
        assert violations == [], violations
    step(f"passed in {time.monotonic() - started:.0f} s: no CSP violation, the run succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
