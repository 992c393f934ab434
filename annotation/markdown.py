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
ALLOWED_TAGS |= {"span"}  # Pygments' highlighted tokens
# Class names only where the highlighter puts them; nh3 keeps only these values (see _CLASS_OK).
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "span": {"class"}, "code": {"class"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, attrs: str) -> str:
    """A fenced block in a known language, as Pygments' token spans (classes only; static/css/code.css colours them).

    markdown-it wraps the result in <pre><code>; an unknown language, or none, keeps the plain text.
    """
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes and shows the code as it is
    return highlight(code, lexer, HtmlFormatter(nowrap=True, classprefix="tok-"))


@lru_cache(maxsize=2)
def _parser(breaks: bool) -> MarkdownIt:
    # commonmark with raw HTML disabled: "<script>" in the text becomes "&lt;script&gt;". Images
    # stay links: a labeler page never fetches a third-party URL.
    options = {"html": False, "breaks": breaks, "highlight": _highlight}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"]).disable("image")


def _class_ok(tag: str, attribute: str, value: str) -> str | None:
    """Keep a class only as the highlighter writes it: tok-* on spans, language-* on code."""
    if attribute != "class":
        return value
    prefix = "tok-" if tag == "span" else "language-" if tag == "code" else None
    kept = [name for name in value.split() if prefix and name.startswith(prefix) and name[len(prefix):].replace("-", "").isalnum()]
    return " ".join(kept) or None


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
        attribute_filter=_class_ok,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener nofollow",
        strip_comments=True,
    )
