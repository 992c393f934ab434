"""A labeler works through the pages in Chromium with the keyboard alone, and the DB holds exactly that."""

import uuid

import pytest

from annotation.models import Annotation, Lease, Task
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_work_page(page, url: str) -> int:
    page.goto(url)
    page.wait_for_selector("#label-app[data-ready=true]")
    return int(page.get_attribute("#label-app", "data-task-id"))


def press_and_wait_for_next(page, key: str) -> int | None:
    """Press the submit key; the page reloads with the next task (its id) or the empty state (None)."""
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_selector("#label-app[data-ready=true], #empty-state")
    if page.locator("#empty-state").count():
        return None
    return int(page.get_attribute("#label-app", "data-task-id"))


@pytest.fixture
def project():
    return ProjectFactory(name="Browser project")


@pytest.fixture
def labeler(project):
    return member(project, username="keyboard-labeler")


def test_demonstration_and_ranking_with_the_keyboard_only(live_server, project, labeler):
    first_demo, second_demo = TaskFactory(project=project), TaskFactory(project=project)
    ranked = comparison_task(project=project, texts=("Alpha answer.", "Beta answer.", "Gamma answer."))
    pair = comparison_task(project=project, texts=("Left answer.", "Right answer."))
    base = live_server.url

    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, labeler.username, "pass-1234")

        # Demonstration: the text box has the focus; a failed submit keeps the draft, even over a reload.
        task_id = open_work_page(page, f"{base}/projects/{project.pk}/label/demonstration/")
        assert task_id == first_demo.pk
        assert page.evaluate("document.activeElement.id") == "demo-text"
        page.keyboard.type("Paris is the capital of France.")
        page.wait_for_selector("#draft-status:has-text('Draft saved')")
        Lease.objects.filter(task=first_demo).delete()  # the server will refuse with 409
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#form-error:not([hidden])")
        assert "no lease" in page.inner_text("#form-error")
        assert page.input_value("#demo-text") == "Paris is the capital of France."
        assert not Annotation.objects.exists()

        page.reload()  # re-claims the same task, and the draft comes back
        page.wait_for_selector("#label-app[data-ready=true]")
        assert int(page.get_attribute("#label-app", "data-task-id")) == first_demo.pk
        assert page.input_value("#demo-text") == "Paris is the capital of France."
        next_id = press_and_wait_for_next(page, "Control+Enter")
        assert next_id == second_demo.pk != first_demo.pk
        demo = Annotation.objects.get(task=first_demo, labeler=labeler)
        assert demo.kind == Annotation.Kind.DEMONSTRATION and demo.text == "Paris is the capital of France."
        assert demo.time_spent_ms > 0 and isinstance(demo.client_id, uuid.UUID)
        assert page.input_value("#demo-text") == ""  # the draft was cleared

        # Ranking of three: 1 then Backspace undoes it; 2 first, then 3 tied with 1 (t 1); flag 1 harmful.
        ids = list(ranked.task_responses.order_by("position").values_list("response_id", flat=True))
        assert open_work_page(page, f"{base}/projects/{project.pk}/label/comparison/") == ranked.pk
        for key in ["1", "Backspace", "2", "3", "t", "1", "f", "1", "h"]:
            page.keyboard.press(key)
        assert page.inner_text("#ranking-list").count("Response") == 3
        assert page.inner_text("#ranking-list .rank-group.is-tie").lower().split() == ["2nd", "response", "3", "=", "response", "1", "tie"]
        assert page.is_checked("#flag-1-harmful")
        page.keyboard.press("r")
        page.keyboard.type("Beta is the most accurate.")
        page.keyboard.press("Escape")
        next_id = press_and_wait_for_next(page, "Enter")
        assert next_id == pair.pk != ranked.pk
        comparison = Annotation.objects.get(task=ranked, labeler=labeler)
        assert comparison.ranking == [[ids[1]], [ids[2], ids[0]]]
        assert comparison.flags == {str(ids[0]): ["harmful"]}
        assert comparison.rationale == "Beta is the most accurate."
        assert comparison.all_bad is False

        # A pair: 2 wins, slightly (d); then nothing is left.
        left, right = pair.task_responses.order_by("position").values_list("response_id", flat=True)
        page.keyboard.press("2")
        page.keyboard.press("Enter")  # no strength yet: refused in the page, nothing sent
        page.wait_for_selector("#form-error:not([hidden])")
        assert "strength" in page.inner_text("#form-error")
        page.keyboard.press("d")
        assert press_and_wait_for_next(page, "Enter") is None
        assert "All done — no comparison tasks are waiting for you" in page.inner_text("#empty-state")
        pair_annotation = Annotation.objects.get(task=pair, labeler=labeler)
        assert pair_annotation.ranking == [[right], [left]]
        assert pair_annotation.strength == Annotation.Strength.SLIGHTLY_BETTER
        assert errors == []

    assert Annotation.objects.count() == 3
    assert Task.objects.get(pk=ranked.pk).done == 1


def test_skip_with_a_preset_reason_by_keyboard(live_server, project, labeler):
    first, second, third = (TaskFactory(project=project) for _ in range(3))
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, f"{live_server.url}/projects/{project.pk}/label/demonstration/") == first.pk
        page.keyboard.press("Control+s")
        page.wait_for_selector("#skip-dialog[open]")
        page.keyboard.press("2")  # the second reason, by its number
        assert page.input_value("#skip-reason") == "It needs expertise I don't have."
        assert press_and_wait_for_next(page, "Enter") == second.pk
        page.keyboard.press("Control+s")
        page.wait_for_selector("#skip-dialog[open]")
        page.focus("#skip-reason")
        page.keyboard.press("Enter")  # no reason yet: the dialog says so and stays open
        page.wait_for_selector("#skip-error:not([hidden])")
        page.keyboard.type("Needs a lawyer.")
        assert press_and_wait_for_next(page, "Enter") == third.pk
    skips = {a.task_id: a for a in Annotation.objects.filter(labeler=labeler)}
    assert skips[first.pk].kind == Annotation.Kind.SKIP and skips[first.pk].reason == "It needs expertise I don't have."
    assert skips[second.pk].reason == "Needs a lawyer."
    assert Task.objects.get(pk=first.pk).done == 0


def test_a_reload_right_after_typing_keeps_the_last_keystrokes(live_server, project, labeler):
    task = TaskFactory(project=project)
    url = f"{live_server.url}/projects/{project.pk}/label/demonstration/"
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, url) == task.pk
        page.keyboard.type("The last words")
        # One more keystroke and the reload in the same script turn, so the 250 ms write cannot run
        # before the page goes: only the write on pagehide can keep the text.
        with page.expect_navigation():
            status = page.evaluate("""() => {
                const box = document.getElementById("demo-text");
                box.value += " count";
                box.dispatchEvent(new Event("input"));
                const status = document.getElementById("draft-status").textContent;
                window.location.reload();
                return status;
            }""")
        assert "Saving draft" in status
        page.wait_for_selector("#label-app[data-ready=true]")
        assert int(page.get_attribute("#label-app", "data-task-id")) == task.pk
        assert page.input_value("#demo-text") == "The last words count"
        assert "Restored your draft" in page.inner_text("#draft-status")


def test_heartbeat_warns_when_the_lease_is_gone(live_server, project, labeler):
    project.lease_seconds = 15  # a beat every 5 s
    project.save()
    task = TaskFactory(project=project)
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, f"{live_server.url}/projects/{project.pk}/label/demonstration/") == task.pk
        Lease.objects.filter(task=task).delete()
        page.wait_for_selector("#lease-banner:not([hidden])", timeout=12_000)
        assert "lease" in page.inner_text("#lease-banner") and "still submit" in page.inner_text("#lease-banner")


def test_ranking_by_drag_and_drop(live_server, project, labeler):
    task = comparison_task(project=project, texts=("A.", "B.", "C.", "D."))
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 1600})  # source and target both in view
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, f"{live_server.url}/projects/{project.pk}/label/comparison/") == task.pk
        page.drag_and_drop("#response-3 .response-head", ".drop-slot-last")  # a card onto the end
        page.drag_and_drop("#unranked-tray .chip[data-number='1']", ".drop-slot-last")
        page.drag_and_drop("#unranked-tray .chip[data-number='4']", ".rank-group[data-group='0']")  # tie with 3
        page.drag_and_drop("#unranked-tray .chip[data-number='2']", ".drop-slot[data-insert='0']")  # insert first
        page.drag_and_drop(".rank-group[data-group='2'] .chip[data-number='1']", "#unranked-tray")  # take back
        page.drag_and_drop("#unranked-tray .chip[data-number='1']", ".rank-group[data-group='0']")  # tie with 2
        assert page.inner_text("#response-1 [data-rank-badge]") == "1st (tie)"
        assert press_and_wait_for_next(page, "Enter") is None
    assert Annotation.objects.get(task=task, labeler=labeler).ranking == [[ids[1], ids[0]], [ids[2], ids[3]]]
