"""What every import format turns its records into: native import lines, and the labels they carry.

A format module reads the objects of a file (one per JSONL line, or per element of a JSON array)
and yields, for each, either an `Item` (a native import line, as annotation/importers.py reads
it, plus the labels that came with it), a `Rejected` line (the reason, which rejects the whole
file), or a `Passed` line (left out on purpose, with a note saying why). Formats never touch the
database: the importer validates the native line and writes it exactly as a native one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


class LineError(Exception):
    """One line's reason for rejection."""


@dataclass(frozen=True)
class Label:
    """An existing label: a ranking of the line's responses (indexes, best first, a group of several a
    tie) for a comparison, or the text of a demonstration."""

    ranking: list[list[int]] | None = None
    text: str | None = None
    strength: str = ""


@dataclass
class Item:
    line: int
    obj: dict  # a native import line: id, prompt or messages, responses, metadata
    labels: list[Label] = field(default_factory=list)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True)
class Passed:
    line: int
    note: str


Outcome = Item | Rejected | Passed
Records = Iterable[tuple[int, object]]


def per_object(convert: Callable[[dict], list[Item] | Item | None]) -> Callable[[Records], Iterator[Outcome]]:
    """A format's reader for formats whose every object stands alone: convert(obj) -> items (lines set here).

    A LineError becomes a Rejected line; a None result passes the line over without a note.
    """

    def read(records: Records) -> Iterator[Outcome]:
        for line, obj in records:
            try:
                if not isinstance(obj, dict):
                    raise LineError(f"the line is not a JSON object but a JSON {type(obj).__name__}")
                made = convert(obj)
            except LineError as exc:
                yield Rejected(line, str(exc))
                continue
            except PassLine as passed:
                yield Passed(line, str(passed))
                continue
            for item in [made] if isinstance(made, Item) else made or []:
                item.line = line
                yield item

    return read


class PassLine(Exception):
    """Raised by a converter for a line it leaves out on purpose; the message is the note."""


def text_of(value, name: str) -> str:
    """A string field's value; the importer checks emptiness and length later, naming the native field."""
    if not isinstance(value, str):
        raise LineError(f"{name} must be a string")
    return value


def extra_metadata(obj: dict, *, used: Iterable[str]) -> dict:
    """The keys a format does not read, kept as the prompt's metadata (the importer bounds its size)."""
    used = set(used)
    return {key: value for key, value in obj.items() if key not in used}
