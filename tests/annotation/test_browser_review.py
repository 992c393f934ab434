"""In Chromium, with the keyboard alone: a reviewer accepts, rejects with a comment and corrects.

The labeler then reads the comment on their work page.
"""

import pytest

from annotation.models import Annotation, Membership, ReviewItem, Task
from annotation.reviews.sampling import review_items_enqueue
from tests.annotation.test_review import label
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_review(page, url: str) -> int:
    page.goto(url)
    page.wait_for_selector("#review-app[data-ready=true]")
    return int(page.get_attribute("#review-app", "data-review-id"))


def press_and_wait_for_next(page, key: str) -> int | None:
    """Press the key that sends the verdict; the page reloads with the next item (its id) or the empty state."""
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_selector("#review-app[data-ready=true], #review-empty")
    if page.locator("#review-empty").count():
        return None
    return int(page.get_attribute("#review-app", "data-review-id"))


def test_a_reviewer_accepts_rejects_and_corrects_by_keyboard_and_the_labeler_reads_the_comment(live_server):
    project = ProjectFactory(name="Review project", guidelines="Answers must be **short**.")
    labeler = member(project, username="lab")
    reviewer = member(project, Membership.Role.REVIEWER, username="rita")
    first_demo = TaskFactory(project=project)
    first_pair = comparison_task(project=project, texts=("Alpha answer.", "Beta answer."))
    second_demo = TaskFactory(project=project)
    second_pair = comparison_task(project=project, texts=("Gamma answer.", "Delta answer."))
    work = [label(project, labeler, text="The capital of France is Paris, a city on the Seine.") for _ in range(4)]
    assert [a.task_id for a in work] == [first_demo.pk, first_pair.pk, second_demo.pk, second_pair.pk]
    review_items_enqueue(annotation_ids=[a.pk for a in work], reason="spot check")
    items = {item.annotation.task_id: item.pk for item in ReviewItem.objects.select_related("annotation")}
    TaskFactory(project=project)  # the labeler's next task, to show the work page
    base = live_server.url
    comment = "Response 2 answers the question; response 1 does not."

    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, reviewer.username, "pass-1234")

        # Accept: the labeler's demonstration is shown as they wrote it; A sends the verdict.
        assert open_review(page, f"{base}/projects/{project.pk}/review/") == items[first_demo.pk]
        assert "Paris" in page.inner_text("#original-text")
        assert "Flagged: spot check" in page.inner_text("#review-why")
        assert press_and_wait_for_next(page, "a") == items[first_pair.pk]

        # Reject: the labeler's ranking is on the page; R opens the comment box, which must not be empty.
        assert "Response 1 > Response 2" in page.inner_text("#original-ranking")
        assert page.inner_text("#response-1 .original-place") == "1st"
        page.keyboard.press("r")
        assert page.evaluate("() => document.activeElement.id") == "reject-comment"
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#form-error:not([hidden])")
        assert "labeler reads it" in page.inner_text("#form-error")
        page.keyboard.type(comment)
        assert press_and_wait_for_next(page, "Control+Enter") == items[second_demo.pk]

        # Correct a demonstration: C opens the labeler's text for editing.
        page.keyboard.press("c")
        assert page.evaluate("() => document.activeElement.id") == "correct-text"
        assert page.input_value("#correct-text").startswith("The capital of France")
        page.keyboard.press("Control+a")
        page.keyboard.type("Paris.")
        assert press_and_wait_for_next(page, "Control+Enter") == items[second_pair.pk]

        # Correct a comparison: C, then 2 is better, A much better; Enter saves and the queue is empty.
        page.keyboard.press("c")
        page.wait_for_selector("#correct-panel:not([hidden])")
        for key in ["2", "a"]:
            page.keyboard.press(key)
        assert page.inner_text("#response-2 [data-rank-badge]") == "Yours: better"
        assert press_and_wait_for_next(page, "Enter") is None
        assert errors == []

        # The labeler opens their work page and reads the comment.
        labeler_page = browser.new_context().new_page()
        login(labeler_page, base, labeler.username, "pass-1234")
        labeler_page.goto(f"{base}/projects/{project.pk}/label/demonstration/")
        labeler_page.wait_for_selector("#label-app[data-ready=true]")
        reviews = labeler_page.inner_text("#my-reviews")
        assert "Reviews of your work" in reviews and comment in reviews and "Rejected" in reviews
        assert f"Task #{first_pair.pk}" in reviews and "Corrected" in reviews and "Accepted" in reviews

    verdicts = dict(ReviewItem.objects.values_list("annotation__task_id", "verdict"))
    assert verdicts == {first_demo.pk: "accepted", first_pair.pk: "rejected", second_demo.pk: "corrected",
                        second_pair.pk: "corrected"}
    assert ReviewItem.objects.get(pk=items[first_pair.pk]).comment == comment
    fixed_demo = Annotation.objects.get(task=second_demo, labeler=reviewer)
    assert fixed_demo.text == "Paris." and fixed_demo.corrected_review.pk == items[second_demo.pk]
    fixed_pair = Annotation.objects.get(task=second_pair, labeler=reviewer)
    shown = list(second_pair.task_responses.order_by("position").values_list("response_id", flat=True))
    assert fixed_pair.ranking == [[shown[1]], [shown[0]]] and fixed_pair.strength == "much_better"
    first_pair.refresh_from_db()
    assert (first_pair.done, first_pair.status) == (0, Task.Status.OPEN)
