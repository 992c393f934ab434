"""Chromium: a labeler undoes a mis-press by keyboard, gets the task back with the answer filled in,
and finds their labels, with a reviewer's comment, on the "My work" page."""

import pytest
from django.utils import timezone

from annotation.models import Annotation, Membership, ReviewItem, Task
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_ready(page) -> int | None:
    page.wait_for_selector("#label-app[data-ready=true], #empty-state")
    if page.locator("#empty-state").count():
        return None
    return int(page.get_attribute("#label-app", "data-task-id"))


def test_undo_by_keyboard_then_my_work_shows_the_labels_and_the_comment(live_server):
    project = ProjectFactory(name="Undo project", overlap=1)
    first = comparison_task(project=project, texts=("Alpha answer.", "Beta answer."),
                            prompt__messages=[{"role": "user", "content": "Name a colour of the sky."}])
    second = comparison_task(project=project, texts=("Gamma answer.", "Delta answer."))
    labeler = member(project, username="undo-labeler")
    reviewer = member(project, Membership.Role.REVIEWER, username="undo-reviewer")
    base = live_server.url

    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, labeler.username, "pass-1234")
        page.goto(f"{base}/projects/{project.pk}/label/comparison/")
        assert wait_ready(page) == first.pk
        assert page.locator("#undo-bar").count() == 0  # nothing submitted yet

        # A mis-press: response 1, slightly better, Enter.
        for key in ["1", "d"]:
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert wait_ready(page) == second.pk
        assert Task.objects.get(pk=first.pk).done == 1
        # The progress on the page that opens right after the submit counts it: 1 of 2 comparisons.
        assert "50.0% of the project's comparisons done" in page.inner_text("#progress-indicator")
        page.wait_for_selector("#undo-bar")

        with page.expect_navigation():
            page.keyboard.press("Control+z")
        assert wait_ready(page) == first.pk  # the undone task, not the one it had moved on to
        assert not Annotation.objects.filter(task=first).exists()
        assert Task.objects.get(pk=first.pk).status == Task.Status.OPEN
        # The previous answer is filled in: response 1 chosen, "slightly better".
        assert page.get_attribute('.choice[data-choice="1"]', "aria-pressed") == "true"
        assert page.is_checked('input[name=strength][value="slightly_better"]')

        # The right answer this time: response 2, better.
        for key in ["2", "s"]:
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        wait_ready(page)
        stored = Annotation.objects.get(task=first, labeler=labeler)
        alpha, beta = first.task_responses.order_by("position").values_list("response_id", flat=True)
        assert stored.ranking == [[beta], [alpha]] and stored.strength == "better"

        ReviewItem.objects.create(project=project, annotation=stored, task=first, labeler=labeler,
                                  reason="sample", status=ReviewItem.Status.DECIDED, verdict="rejected",
                                  comment="Check the guidelines on colours.", reviewer=reviewer,
                                  decided_at=timezone.now())
        Annotation.objects.filter(pk=stored.pk).update(review_state="rejected")

        page.goto(f"{base}/projects/{project.pk}/my-work/")
        row = page.locator(f'#my-work tr[data-annotation-id="{stored.pk}"]')
        assert "Response 2 > Response 1" in row.inner_text()
        assert "Check the guidelines on colours." in row.inner_text()
        assert "Rejected" in row.inner_text()
        page.select_option("select[name=review]", "rejected")
        page.fill("input[name=q]", "colour of the sky")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator("#my-work tbody tr").count() == 1
        assert "1 annotation" in page.inner_text("#my-work-count")
        assert errors == []
