"""On a phone (touch, no hover): tap hints instead of the key legend, and a ranking with a tie by taps alone."""

import pytest

from annotation.models import Annotation
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tap_hints_and_a_tied_ranking_by_taps(live_server):
    project = ProjectFactory(name="Phone project", overlap=1)
    task = comparison_task(project=project, texts=("Alpha.", "Beta.", "Gamma."))
    labeler = member(project, username="phone-labeler")
    with launch_browser() as browser:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = context.new_page()
        login(page, live_server.url, labeler.username, "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/label/comparison/")
        page.wait_for_selector("#label-app[data-ready=true]")
        assert page.is_visible("#tap-hints") and not page.is_visible("#shortcut-legend")
        assert "Tap the responses from best to worst" in page.inner_text("#tap-hints")

        page.tap('#unranked-tray .chip:has-text("Response 2")')
        page.tap("#rank-tie")
        assert page.get_attribute("#rank-tie", "aria-pressed") == "true"
        page.tap('#unranked-tray .chip:has-text("Response 3")')
        page.tap('#unranked-tray .chip:has-text("Response 1")')
        page.tap("#rank-undo")
        page.tap('#unranked-tray .chip:has-text("Response 1")')
        with page.expect_navigation():
            page.tap("#submit-btn")
        stored = Annotation.objects.get(task=task, labeler=labeler)
        ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
        assert [sorted(group) for group in stored.ranking] == [sorted([ids[1], ids[2]]), [ids[0]]]
