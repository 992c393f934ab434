"""Shoot the README's screenshots in Chromium (Playwright) from a running server: bin/screenshots does the rest.

    python bin/screenshots.py http://127.0.0.1:8765 docs/screenshots PASSWORD
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = [
    # (file, user, path, what to wait for)
    ("projects.png", "demo-labeler", "/", ".project-card"),
    ("compare.png", "demo-labeler", "/projects/{p}/label/comparison/", "#label-app[data-ready=true], #empty-state"),
    ("demonstration.png", "demo-labeler", "/projects/{p}/label/demonstration/",
     "#label-app[data-ready=true], #empty-state"),
    ("dashboard.png", "demo-admin", "/projects/{p}/dashboard/", "#timeline-chart"),
    ("run.png", "demo-admin", "/training/runs/1/", "[data-chart=loss]"),
    ("models.png", "demo-admin", "/training/models/", "#model-tree"),
]


def main(base: str, folder: str, password: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for scheme in ("light",):
            pages = {}
            for file, user, path, ready in SHOTS:
                if user not in pages:
                    context = browser.new_context(viewport={"width": 1366, "height": 860}, color_scheme=scheme)
                    page = context.new_page()
                    page.goto(f"{base}/login/")
                    page.fill("#id_username", user)
                    page.fill("#id_password", password)
                    with page.expect_navigation():
                        page.click("button[type=submit]")
                    pages[user] = page
                page = pages[user]
                page.goto(base + path.format(p=1))
                page.wait_for_selector(ready)
                page.wait_for_timeout(400)  # charts finish drawing
                page.screenshot(path=str(out / file))
                print(f"  {out / file}")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
