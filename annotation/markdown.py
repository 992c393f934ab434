"""Markdown for labelers: rendered on the server by markdown-it-py, then sanitised by nh3.

Raw HTML in the source is never passed through (markdown-it escapes it), and the sanitiser then
keeps only a small set of harmless tags, so prompts, responses and guidelines imported from
anywhere render inert.
"""

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "del", "s",
    "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=2)
def _parser(breaks: bool) -> MarkdownIt:
    # commonmark with raw HTML disabled: "<script>" in the text becomes "&lt;script&gt;". Images
    # stay links: a labeler page never fetches a third-party URL.
    return MarkdownIt("commonmark", {"html": False, "breaks": breaks}).enable(["table", "strikethrough"]).disable("image")


def render_markdown(text, *, breaks: bool = True) -> str:
    """Return sanitised HTML for a Markdown string. None and non-strings render as their text.

    breaks=True keeps every line break (chat messages and responses, where a model's or a person's
    line breaks mean something); breaks=False is Markdown's own rule, a single break is a space
    (documents such as guidelines, written wrapped at some width).
    """
    if text is None:
        return ""
    html = _parser(breaks).render(str(text))
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener nofollow",
        strip_comments=True,
    )
