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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_date_and_search_filters_look_like_the_menus_beside_them(live_server):
    from annotation.models import Membership

    project = ProjectFactory()
    member(project, Membership.Role.ADMIN, username="filtering-admin")
    sizes = """() => Array.from(document.querySelectorAll(
      'form.browse-filters select, form.browse-filters input[type=date], form.browse-filters input[type=search]')).map(el => [el.type, Math.round(el.getBoundingClientRect().height),
      getComputedStyle(el).borderTopLeftRadius, getComputedStyle(el).paddingLeft])"""
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_server.url, "filtering-admin", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/annotations/")
        fields = page.evaluate(sizes)
        assert {kind for kind, *_ in fields} == {"select-one", "date", "search"}
        assert len({tuple(style) for _, *style in fields}) == 1, fields  # one height, corner and padding


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_project_cards_action_and_its_waiting_count_each_stay_whole(live_server):
    from tests.factories import TaskFactory

    project = ProjectFactory(name="Card project")
    TaskFactory.create_batch(2, project=project)
    comparison_task(project=project)
    member(project, username="card-labeler")
    # Per action button: how many lines its label and its count each take.
    lines = """() => Array.from(document.querySelectorAll('a[data-waiting]')).map(a => {
      const label = document.createRange();
      label.selectNodeContents(a.firstChild);
      return [a.firstChild.textContent.trim(), label.getClientRects().length,
              a.querySelector('.waiting-count').getClientRects().length];
    })"""
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_server.url, "card-labeler", "pass-1234")
        page.goto(f"{live_server.url}/")
        buttons = page.evaluate(lines)
        assert [label for label, *_ in buttons] == ["Write demonstrations", "Compare responses"]
        assert all(counts == [1, 1] for _, *counts in buttons), buttons


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_code_is_highlighted_and_readable_and_guidelines_wrap_as_sentences(live_server):
    project = ProjectFactory(guidelines="Pick the response that best\nfollows the instruction.\n\nThen rate it.")
    code = "```python\ndef double(x):\n    return 2 * x  # twice\n```"
    comparison_task(project=project, texts=(code, "Just multiply it by two."))
    member(project, username="coder")
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_server.url, "coder", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/label/comparison/")
        page.wait_for_selector("#label-app[data-ready=true]")
        style = "(el) => [getComputedStyle(el).color, parseFloat(getComputedStyle(el).fontSize)]"
        keyword = page.eval_on_selector("article.response pre .tok-k", style)
        comment = page.eval_on_selector("article.response pre .tok-c1", style)
        name = page.eval_on_selector("article.response pre .tok-nf", style)
        assert len({keyword[0], comment[0], name[0]}) == 3  # a keyword, a comment and a name, each coloured
        assert page.eval_on_selector("article.response pre code", style)[1] >= 14  # not small print
        page.keyboard.press("g")
        page.wait_for_selector("#guidelines:not([hidden])")
        first = page.locator("#guidelines .drawer-body p").first
        assert first.inner_text() == "Pick the response that best follows the instruction."  # one sentence, no <br>
        assert first.locator("br").count() == 0
