"""The import's options for the labels a public format carries: whether they count, and whose they are."""

from __future__ import annotations

import re

from ..errors import InvalidInput

LABEL_MODES = ("use", "hide")  # imported labels count toward done, or are kept hidden and labelled again
MAX_SOURCE_CHARS = 100  # Annotation.external_source
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+-]*$")


def label_mode_clean(labels: str | None) -> str:
    labels = (labels or "use").strip().lower() if isinstance(labels, str) or labels is None else labels
    if labels not in LABEL_MODES:
        raise InvalidInput(
            "labels must be 'use' (imported labels count toward done) or 'hide' (kept, and labelled again).",
            field="labels",
        )
    return labels


def source_clean(source: str | None) -> str:
    """The external source's name as given, or "" (the format's own name then)."""
    if source is None or (isinstance(source, str) and not source.strip()):
        return ""
    name = source.strip() if isinstance(source, str) else ""
    if not name or len(name) > MAX_SOURCE_CHARS or not SOURCE_PATTERN.match(name):
        raise InvalidInput(
            f"source names where the labels come from: up to {MAX_SOURCE_CHARS} letters, digits, spaces and "
            "._:/@+- , starting with a letter or digit (e.g. hh-rlhf).",
            field="source",
        )
    return name
