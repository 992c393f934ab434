"""Prompt import (JSONL, CSV). Implemented by the import/export work; see DESIGN.md "Formats"."""

FORMATS = ("jsonl", "csv")


def prompts_import(*, project, fileobj, filename: str = "", fmt: str | None = None):
    raise NotImplementedError
