"""Prompts, responses and guidelines come from imports: on the labeler pages they must render inert."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from annotation.markdown import render_markdown
from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, comparison_task, member

SCRIPT = "<script>window.__xss = 'script'; alert(1)</script>"
IMG = "<img src=x onerror=\"window.__xss = 'img'; alert(1)\">"
LINK = "[click me](javascript:window.__xss='link')"
EVIL = f"Hello {SCRIPT} and {IMG} and {LINK}"


class TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict]]:
    parser = TagCollector()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    tags = tags_of(html)
    handlers = [(tag, name) for tag, attrs in tags for name in attrs if name.lower().startswith("on")]
    assert handlers == [], f"event handler attributes in the page: {handlers}"
    assert not [t for t, _ in tags if t in {"img", "iframe", "object", "embed"}]
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    # Only the page's own scripts: the json_script data block and the work page's two script files.
    own = ("/static/js/work_common.js", "/static/js/labeling.js")
    assert all(a.get("type") == "application/json" or a.get("src", "") in own for a in scripts), scripts
    assert not [a for _, a in tags if str(a.get("href", "")).lower().startswith("javascript:")]
    assert "&lt;script&gt;" in html and "onerror" in html  # the text is shown, escaped
    assert "<script>window.__xss" not in html


def make_evil_project():
    project = ProjectFactory(guidelines=f"# Rules\n\n{EVIL}")
    prompt = PromptFactory(project=project, messages=[
        {"role": "system", "content": EVIL},
        {"role": f"user{SCRIPT}", "content": EVIL},
    ])
    TaskFactory(project=project, prompt=prompt)
    comparison_task(project=project, prompt=prompt, texts=(EVIL, f"**bold** {IMG}"))
    user = member(project, role=Membership.Role.ADMIN, username="xss-labeler")
    return project, user


def test_render_markdown_keeps_safe_markup_and_drops_the_rest():
    html = render_markdown(EVIL + "\n\n**b** [ok](https://example.com)\n\n![pic](https://example.com/p.png)")
    assert_inert(html)
    assert "<strong>b</strong>" in html
    assert '<a href="https://example.com" rel="noopener nofollow">ok</a>' in html
    assert "<img" not in html and 'href="https://example.com/p.png"' in html  # an image stays a link
    assert render_markdown(None) == ""


@pytest.mark.django_db
def test_labeler_pages_escape_injected_markup(client):
    project, user = make_evil_project()
    client.force_login(user)
    for kind in ["demonstration", "comparison"]:
        html = client.get(reverse("task-label", args=[project.pk, kind])).content.decode()
        assert_inert(html)
        assert html.count("&lt;img src=x onerror=") >= 2
    project.name = SCRIPT
    project.save()
    assert_inert(client.get("/").content.decode() + "&lt;script&gt; onerror")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_injected_markup_never_runs_in_chromium(live_server):
    project, user = make_evil_project()
    with launch_browser() as browser:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        login(page, live_server.url, user.username, "pass-1234")
        for kind in ["demonstration", "comparison"]:
            page.goto(f"{live_server.url}/projects/{project.pk}/label/{kind}/")
            page.wait_for_selector("#label-app[data-ready=true]")
            page.keyboard.press("Escape")  # leave the autofocused text box
            page.keyboard.press("g")  # open the guidelines, which hold the payloads too
            page.wait_for_selector("#guidelines:not([hidden])")
            page.wait_for_load_state("networkidle")  # an <img src=x> would have errored by now
            assert dialogs == [], kind
            assert page.evaluate("typeof window.__xss") == "undefined", kind
            assert page.evaluate("[...document.links].filter(a => a.protocol === 'javascript:').length") == 0
            assert "<script>window.__xss" in page.inner_text("#guidelines")  # shown as text
            assert page.locator(".conversation").inner_text().count("onerror") >= 2


def test_guidelines_wrap_like_markdown_but_chat_text_keeps_its_line_breaks():
    from annotation.templatetags.markdown import markdown_document_filter, markdown_filter

    wrapped = "Pick the response that best\nfollows the instruction.\n\nThen rate it."
    assert markdown_document_filter(wrapped) == (
        "<p>Pick the response that best\nfollows the instruction.</p>\n<p>Then rate it.</p>\n"
    )  # a soft break: the browser shows a space
    assert "<br>" in markdown_filter("Roses are red,\nviolets are blue.")  # a poem keeps its lines


def test_code_blocks_are_highlighted_with_classes_only_and_stay_inert():
    html = render_markdown("```python\ndef f(x):\n    return x + 1\n```\n\n```nolang\n<b>x</b>\n```")
    assert '<code class="language-python"><span class="tok-k">def</span>' in html
    assert "style=" not in html  # colours come from static/css/code.css, under the strict CSP
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # an unknown language is shown as plain, escaped text
    forged = render_markdown('`x` <span class="tok-k x" style="color:red">y</span>')
    assert "<span" not in forged  # raw HTML in the text never becomes markup, highlighter classes or not
