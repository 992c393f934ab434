"""A file that holds one JSON array (Label Studio's export), read element by element with line numbers.

The file is decoded whole (it is bounded by the import's size limit), then each element is
parsed in turn, so an error names the line its element starts on and the elements after a bad
one are still checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


def array_elements(text: str) -> Iterator[tuple[int, object | None, str | None]]:
    """(line, element, None) for each element of the array in text, or (line, None, reason) for a bad one.

    A bad element ends the reading: what follows cannot be found reliably.
    """
    text = text.lstrip("\ufeff")
    pos, line = 0, 1

    def skip(pos: int, line: int) -> tuple[int, int]:
        while pos < len(text) and text[pos] in _SPACE:
            line += text[pos] == "\n"
            pos += 1
        return pos, line

    pos, line = skip(pos, line)
    if not text.startswith("[", pos):
        yield line, None, "the file must hold one JSON array of tasks"
        return
    pos, line = skip(pos + 1, line)
    if text.startswith("]", pos):
        return
    while True:
        try:
            element, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"malformed JSON: {exc.msg} at column {exc.colno}"
            return
        except RecursionError:
            yield line, None, "malformed JSON: nested too deep"
            return
        yield line, element, None
        line += text.count("\n", pos, end)
        pos, line = skip(end, line)
        if text.startswith(",", pos):
            pos, line = skip(pos + 1, line)
            continue
        if text.startswith("]", pos):
            pos, line = skip(pos + 1, line)
            if pos < len(text):
                yield line, None, "malformed JSON: text after the array's end"
            return
        yield line, None, "malformed JSON: expected ',' or ']' after an element"
        return


def lines_text(lines: Iterable[tuple[int, bytes | None]]) -> str | None:
    """The physical lines joined back into the file's text; None if a line is too long or not UTF-8."""
    parts = []
    for _, raw in lines:
        if raw is None:
            return None
        parts.append(raw)
    try:
        return b"\n".join(parts).decode("utf-8")
    except UnicodeDecodeError:
        return None
