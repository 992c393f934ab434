"""Edit to improve in Chromium, by keyboard: E opens the best response for rewriting, X discards it."""

import pytest

from annotation.models import Annotation, Response
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_work_page(page, url: str) -> int:
    page.goto(url)
    page.wait_for_selector("#label-app[data-ready=true]")
    return int(page.get_attribute("#label-app", "data-task-id"))


def test_rewrite_the_best_response_with_the_keyboard(live_server):
    project = ProjectFactory(name="Edit project")
    labeler = member(project, username="edit-labeler")
    pair = comparison_task(project=project, texts=("Tides are weather.", "The moon pulls the sea."))
    ranked = comparison_task(project=project, texts=("Alpha.", "Beta.", "Gamma."))
    left, right = pair.task_responses.order_by("position").values_list("response_id", flat=True)
    url = f"{live_server.url}/projects/{project.pk}/label/comparison/"

    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, live_server.url, labeler.username, "pass-1234")
        assert open_work_page(page, url) == pair.pk
        assert page.is_hidden("#edit-section")

        page.keyboard.press("e")  # nothing chosen yet: a hint, no edit box
        page.wait_for_selector("#key-hint:has-text('Choose the better response first')")
        assert page.is_hidden("#edit-section")

        page.keyboard.press("2")
        page.keyboard.press("s")
        page.keyboard.press("e")  # the box opens on response 2, prefilled, with the focus
        page.wait_for_selector("#edit-section:not([hidden])")
        assert page.inner_text("#edit-source") == "Response 2"
        assert page.input_value("#edit-text") == "The moon pulls the sea."
        assert page.evaluate("document.activeElement.id") == "edit-text"

        page.keyboard.press("Control+Enter")  # unchanged: refused in the page, nothing sent
        page.wait_for_selector("#form-error:not([hidden])")
        assert "same as the original" in page.inner_text("#form-error")
        assert not Annotation.objects.exists()

        page.keyboard.press("Control+a")
        page.keyboard.type("The moon's gravity pulls the oceans, and the Earth turns beneath them.")
        page.wait_for_selector("#draft-status:has-text('Draft saved')")
        page.reload()  # the draft keeps the edit
        page.wait_for_selector("#label-app[data-ready=true]")
        assert page.is_visible("#edit-section")
        assert page.input_value("#edit-text").startswith("The moon's gravity")

        page.keyboard.press("Escape")  # (no focus after a reload: a no-op) then submit with Enter
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#label-app[data-ready=true]")
        assert int(page.get_attribute("#label-app", "data-task-id")) == ranked.pk

        annotation = Annotation.objects.get(task=pair, labeler=labeler)
        assert annotation.ranking == [[right], [left]] and annotation.strength == "better"
        edit = annotation.edited_response
        assert edit.text == "The moon's gravity pulls the oceans, and the Earth turns beneath them."
        assert (edit.edited_from_id, edit.source, edit.author_id) == (right, Response.Source.HUMAN, labeler.pk)

        # Ranking of three: E opens the first place (response 3); X discards; the submit carries no edit.
        assert page.is_hidden("#edit-section")
        for key in ["3", "1", "2", "e"]:
            page.keyboard.press(key)
        page.wait_for_selector("#edit-section:not([hidden])")
        assert page.inner_text("#edit-source") == "Response 3"
        assert page.input_value("#edit-text") == "Gamma."
        page.keyboard.type(" Better.")
        page.keyboard.press("Escape")
        page.keyboard.press("x")
        assert page.is_hidden("#edit-section")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#empty-state")
        assert errors == []

    ranked_annotation = Annotation.objects.get(task=ranked, labeler=labeler)
    assert ranked_annotation.edited_response is None
    assert Response.objects.filter(source=Response.Source.HUMAN).count() == 1
