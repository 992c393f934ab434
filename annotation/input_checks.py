"""Text that can never be stored, and JSON too deep to handle, found before anything reaches a query.

PostgreSQL refuses a NUL character in text and "\\u0000" in jsonb, and a lone surrogate (half of
a UTF-16 pair, which JSON's "\\ud800" escape produces) cannot be encoded as UTF-8 at all. Either
one, sent in any field, used to reach the database driver and come back as a 500. JSON nested
thousands deep made the parser raise RecursionError, another 500. The API's JSON parser, the
input middleware (forms and query strings) and the importer all ask this module, so each
answers with a 400 that names the field as a path: `config.lr_scheduler_type`,
`messages[0].content`.

The walk is iterative, so checking a deep document cannot itself overflow the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_JSON_DEPTH = 64  # objects and arrays inside each other; real payloads use fewer than ten

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In JSON text, the only way to write a NUL or a lone surrogate: a \u escape (raw control
# characters are not valid JSON, and decoded UTF-8 holds no surrogates).
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


def text_problem(value: str) -> str | None:
    """Why the text cannot be stored ("contains a NUL character"), or None when it can."""
    match = _UNSTORABLE.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character"
    return "contains a lone surrogate (invalid Unicode)"


def printable(text: str) -> str:
    """The text with NULs and lone surrogates written as \\uXXXX, safe to put in an error message."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def field_path(segments: tuple) -> str:
    """("messages", 0, "content") -> "messages[0].content"."""
    path = ""
    for segment in segments:
        if isinstance(segment, int):
            path += f"[{segment}]"
        else:
            path += f".{printable(segment)}" if path else printable(segment)
    return path


def json_text_is_plain(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON text cannot hold a problem json_problem would find, so the walk can be skipped.

    One pass in C over the text, where the walk is a loop in Python over every value: the
    importer asks this of each line. False means "maybe": walk the parsed value to be sure.
    """
    return text.count("[") + text.count("{") <= max_depth and _UNSTORABLE_ESCAPE.search(text) is None


def json_problem(data, *, root: tuple = (), max_depth: int = MAX_JSON_DEPTH) -> Problem | None:
    """The first problem in document order in parsed JSON: an unstorable key or string, or too deep.

    `root` names where the data sits (("metadata",) for a line's metadata), so paths start there.
    """
    # Entries: (value, path segments, depth of the container holding it, is it a key).
    stack: list[tuple] = [(data, root, len(root), False)]
    while stack:
        value, segments, depth, is_key = stack.pop()
        if isinstance(value, str):
            reason = text_problem(value)
            if reason:
                name = field_path(segments) or "body"
                subject = f"The key {name}" if is_key else name
                return Problem(name, f"{subject} {reason}.")
        elif isinstance(value, (dict, list)):
            if depth - len(root) >= max_depth:
                name = field_path(segments) or "body"
                return Problem(name, f"{name} is nested more than {max_depth} levels deep.")
            if isinstance(value, dict):
                for key, item in reversed(list(value.items())):
                    path = (*segments, key)
                    stack.append((item, path, depth + 1, False))
                    stack.append((key, path, depth + 1, True))
            else:
                for index in range(len(value) - 1, -1, -1):
                    stack.append((value[index], (*segments, index), depth + 1, False))
    return None
