"""The labeler's view of gold tasks in Chromium: training mode's expected answer, and qualification."""

import pytest

from annotation.models import Annotation, GoldRecord, Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, gold_comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_work_page(page, url: str) -> int:
    page.goto(url)
    page.wait_for_selector("#label-app[data-ready=true]")
    return int(page.get_attribute("#label-app", "data-task-id"))


def display_number(task, response_id: int) -> int:
    order = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    return order.index(response_id) + 1


def test_training_mode_shows_the_expected_answer_after_a_gold_submit(live_server):
    project = ProjectFactory(gold_rate=1.0, gold_training_mode=True)
    labeler = member(project, username="trainee")
    fake = gold_comparison_task(project=project, texts=("Kind reply.", "Curt reply."), explanation="Kindness wins.")
    real = comparison_task(project=project, texts=("One.", "Two."))
    right = display_number(fake, fake.gold["ranking"][0][0])
    wrong = 3 - right
    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, f"{live_server.url}/projects/{project.pk}/label/comparison/") == fake.pk
        assert page.is_hidden("#gold-reveal")
        for key in [str(wrong), "s", "Enter"]:
            page.keyboard.press(key)
        page.wait_for_selector("#gold-reveal:not([hidden])")  # no reload: the answer is shown first
        assert "differs from the expected one" in page.inner_text("#gold-verdict")
        assert page.inner_text("#gold-expected .gold-ranking li:first-child") == f"Response {right}"
        assert page.inner_text("#gold-explanation") == "Why: Kindness wins."
        assert page.evaluate("document.activeElement.id") == "gold-next"
        assert Annotation.objects.get(task=fake, labeler=labeler).gold_correct is False
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#label-app[data-ready=true]")
        assert int(page.get_attribute("#label-app", "data-task-id")) == real.pk
        assert page.is_hidden("#gold-reveal")

        # The admin's dashboard draws the trainee's accuracy and its interval.
        member(project, role=Membership.Role.ADMIN, username="gold-admin")
        admin_page = browser.new_page()
        admin_page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(admin_page, live_server.url, "gold-admin", "pass-1234")
        admin_page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
        admin_page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('gold-chart'))")
        row = admin_page.inner_text("#gold-table tr[data-labeler='trainee']")
        assert "0.000" in row and "0.000 – 0.793" in row  # 0 of 1: Wilson's interval is [0, 0.793]
        assert errors == []


def test_a_labeler_below_the_bar_sees_that_they_are_held_out(live_server):
    project = ProjectFactory(qualification_tasks=1, qualification_min_accuracy=1.0)
    labeler = member(project, username="hopeful")
    fake = gold_comparison_task(project=project, texts=("Right.", "Wrong."))
    comparison_task(project=project)
    wrong = display_number(fake, fake.gold["ranking"][1][0])
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, f"{live_server.url}/projects/{project.pk}/label/comparison/") == fake.pk
        assert "0 of 1 answered" in page.inner_text("#qualification-banner")
        page.keyboard.press(str(wrong))
        page.keyboard.press("a")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#qualification-state")
        assert page.get_attribute("#qualification-state", "data-status") == "held_out"
        assert "You are held out of this project" in page.inner_text("h1")
        message = page.inner_text("#qualification-message")
        assert "0 of your 1 qualification answers matched (0%)" in message and "re-admit" in message
    assert GoldRecord.objects.get(project=project, labeler=labeler).status == GoldRecord.Status.HELD_OUT
