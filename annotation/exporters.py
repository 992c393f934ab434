"""Streamed exports in TRL formats. Implemented by the import/export work; see DESIGN.md "Formats"."""

FORMATS = ("sft", "preference", "raw")


def export_lines(*, project, fmt: str):
    raise NotImplementedError
