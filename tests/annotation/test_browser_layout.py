"""Four responses sit side by side on a laptop screen (1366 px wide), so a labeler reads them at once."""

import pytest

from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, member


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_four_responses_share_one_row_at_1366_px(live_server):
    project = ProjectFactory()
    comparison_task(project=project, texts=("First.", "Second.", "Third.", "Fourth."))
    member(project, username="wide")
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        login(page, live_server.url, "wide", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/label/comparison/")
        page.wait_for_selector("#label-app[data-ready=true]")
        tops = page.eval_on_selector_all("article.response", "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert len(tops) == 4 and len(set(tops)) == 1, tops
        narrow = browser.new_page(viewport={"width": 800, "height": 900})
        login(narrow, live_server.url, "wide", "pass-1234")
        narrow.goto(f"{live_server.url}/projects/{project.pk}/label/comparison/")
        narrow.wait_for_selector("#label-app[data-ready=true]")
        tops = narrow.eval_on_selector_all("article.response", "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert len(set(tops)) > 1  # a narrow window stacks them instead of squeezing four columns
