"""Markdown rendered on the server and sanitised (see annotation.markdown).

`{{ text|markdown }}` for chat messages and responses, where every line break shows;
`{{ text|markdown_document }}` for guidelines, where a single line break is a space, as in Markdown.
"""

from django import template
from django.utils.safestring import mark_safe

from annotation.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - nh3 has sanitised it


@register.filter(name="markdown_document")
def markdown_document_filter(text) -> str:
    return mark_safe(render_markdown(text, breaks=False))  # noqa: S308 - nh3 has sanitised it
