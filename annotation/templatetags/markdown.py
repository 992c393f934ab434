"""`{{ text|markdown }}`: Markdown rendered on the server and sanitised (see annotation.markdown)."""

from django import template
from django.utils.safestring import mark_safe

from annotation.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - nh3 has sanitised it
