"""Prompt import: JSONL or CSV in, prompts and tasks out. The formats are in README.md ("For the admin").

One object per line (JSONL) or one row per prompt (CSV):

    {"id": "q1", "prompt": "Name a prime.", "metadata": {"topic": "math"}}
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    {"prompt": "Which is kinder?", "responses": ["Answer A", "Answer B", "Answer C"]}

A line with "responses" (2..MAX_RESPONSES strings) makes a comparison task that shows them in a
random display order; any other line makes a demonstration task. "id" becomes the prompt's
external_id; without one a hash of the content stands in, so importing a file twice adds nothing.

A line with "gold" makes a gold task, one with a known answer (annotation/gold.py):

    {"prompt": "2 + 2?", "responses": ["4", "5"], "gold": {"ranking": [[0], [1]]}, "explanation": "Arithmetic."}
    {"prompt": "Capital of France?", "gold": {"reference": "Paris."}}

A comparison's gold ranking holds indexes into its "responses", best first, each exactly once, a
group of several a tie; the importer turns them into the ids of the responses it creates. A
demonstration's gold is a reference answer. "explanation" (beside "gold" or inside it) is shown
in training mode. In CSV, "gold" is a JSON cell and "explanation" a plain one.

The import is atomic and streamed: the file is read once, line by line, and valid prompts are
written in batches inside one transaction. After the first bad line only the prompts themselves
are written, so that the database (not memory) remembers the ids seen and later duplicates are
still caught; the rest of the file is read so that the error names the bad lines (the first
MAX_REPORTED_ERRORS of them, then "and N more"); then the transaction rolls back. Memory holds
one batch, not the file, whether the file is good or bad.

A line whose id is in the project already is not imported again. If its content changed, that
is reported; in update mode the stored prompt is replaced instead, unless labelers depend on it
(annotation/reimport.py).

Text that cannot be stored (NUL, lone surrogates) and JSON nested too deep are line errors that
name the field's path (annotation/input_checks.py).

Public formats (TRL rows, HH-RLHF, UltraFeedback, OpenAssistant trees, Label Studio exports) are
read by annotation/import_formats/, detected from the first object or named with `fmt`. Their
lines become native lines here, and the labels they carry become annotations from a named
external source (no labeler): counted toward the task's done (labels="use") or kept hidden
(labels="hide"), so labelers label the task again. See docs/import-formats.md.

This module reads and checks; annotation/import_writing.py stores the rows that pass.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction

from . import import_formats, reimport
from .bulk_insert import JsonText
from .errors import InvalidInput, PayloadTooLarge
from .import_formats import options
from .import_formats.base import Item, Label, LineError, Passed, Rejected
from .import_formats.json_array import array_elements, lines_text
from .input_checks import json_problem, json_text_is_plain
from .import_writing import BatchWriter
from .models import Annotation, Project
from .read_ahead import REPORT, Reports, read_ahead

NATIVE_FORMATS = ("jsonl", "csv")
FORMATS = (*NATIVE_FORMATS, *import_formats.NAMES)
LABEL_MODES = options.LABEL_MODES
MAX_SOURCE_CHARS = options.MAX_SOURCE_CHARS
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
ROLES = ("user", "assistant", "system")
KEYS = ("id", "prompt", "messages", "responses", "metadata", "gold", "explanation")

MAX_FIELD_CHARS = 50_000  # the longest prompt, message, response or metadata (as JSON) we take
MAX_LINE_BYTES = 32 * 1024 * 1024  # a longer line is rejected without being held in memory
MAX_ID_CHARS = 200  # Prompt.external_id
MAX_RESPONSES = 16
MAX_REPORTED_ERRORS = 1000  # line errors (and notes about changed lines) listed; the rest are counted
RECENT_LINES = 1024  # how far back a second report about the same line is recognised (one per line)
BATCH_SIZE = 3000  # rows a batch writes; each table costs a few statements per batch, so fewer batches cost less
READ_CHUNK_BYTES = 64 * 1024
MODES = reimport.MODES


class LineReports:
    """Line-numbered reports in constant memory: the first MAX_REPORTED_ERRORS are kept, the rest counted.

    One report per line. Reports about a line arrive while its record is handled (or its batch
    written, for rows that had no error), so remembering the last RECENT_LINES lines is enough.
    """

    def __init__(self, key: str):
        self.key = key
        self.count = 0
        self.items: list[dict] = []
        self.recent: dict[int, None] = {}

    def add(self, line: int, text: str, **fields) -> None:
        if line in self.recent:
            return
        self.recent[line] = None
        if len(self.recent) > RECENT_LINES:
            del self.recent[next(iter(self.recent))]
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"line": line, **fields, self.key: text})

    @property
    def not_listed(self) -> int:
        return self.count - len(self.items)

    def sorted_items(self) -> list[dict]:
        return sorted(self.items, key=lambda item: item["line"])


@dataclass
class ImportResult:
    created_prompts: int = 0
    created_tasks: int = 0
    skipped_existing: int = 0  # lines whose id was there already, left as they were
    changed_kept: int = 0  # of those, lines whose content differs from the stored prompt's
    updated_prompts: int = 0  # update mode: stored prompts replaced by a changed line
    notes: LineReports = field(default_factory=lambda: LineReports("message"))
    format: str = "jsonl"
    source: str = ""  # the external source the labels are credited to (a public format's import)
    labels: str = "use"
    created_labels: int = 0

    def as_dict(self) -> dict:
        body = {
            "created_prompts": self.created_prompts,
            "created_tasks": self.created_tasks,
            "skipped_existing": self.skipped_existing,
            "changed_kept": self.changed_kept,
            "updated_prompts": self.updated_prompts,
            "notes": self.notes.sorted_items(),
            "notes_not_listed": self.notes.not_listed,
        }
        if self.format not in NATIVE_FORMATS:
            body.update(format=self.format, source=self.source, labels=self.labels, created_labels=self.created_labels)
        return body


@dataclass
class ImportRow:
    line: int
    external_id: str
    messages: list[dict]
    responses: list[str]
    metadata: dict
    gold: dict | None = None  # in the line's terms: response indexes, not ids
    labels: list[Label] = field(default_factory=list)  # a public format's labels, in the line's terms too
    messages_json: JsonText | None = None  # the messages as JSON, where the content id needed it anyway


class _Errors(LineReports):
    def __init__(self):
        super().__init__("error")

    def raise_if_any(self) -> None:
        if not self.count:
            return
        noun = "line is" if self.count == 1 else "lines are"
        message = f"{self.count} {noun} invalid"
        if self.not_listed:
            message += f"; the first {len(self.items)} are listed, and {self.not_listed} more"
        raise InvalidInput(
            message + ". Nothing was imported.", field="file", details=self.sorted_items(),
            extra={"errors_not_listed": self.not_listed},
        )


def accepts_import_file(view):
    """Marks a view (a function, or a DRF view class) that takes an import file as a multipart upload.

    The input middleware (config/middleware.py) lets such a request's body reach IMPORT_MAX_BYTES
    instead of the body limit; the view passes max_bytes to prompts_import, which checks the file.
    """
    view.accepts_import_file = True
    return view


def prompts_import(
    *, project: Project, fileobj, filename: str = "", fmt: str | None = None, mode: str = "add",
    max_bytes: int | None = None, source: str | None = None, labels: str | None = None,
) -> ImportResult:
    """Import prompts from a binary file object (an UploadedFile, or open(path, "rb")).

    mode "add" (the default) creates the new lines' prompts and reports lines whose id exists with
    other content; "update" replaces those prompts too, where no labeler depends on them. A file
    over max_bytes (None: any size) raises PayloadTooLarge(field="file"), checked before reading
    where the size is known and while reading where it is not.
    A public format's labels are credited to `source` (default: the format's name) and count
    toward their tasks' done with labels="use" (the default), or are kept hidden with "hide".
    Raises InvalidInput(field="file") naming every bad line, and then nothing is stored.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}.", field="mode")
    labels = options.label_mode_clean(labels)
    source = options.source_clean(source)
    size = getattr(fileobj, "size", None)
    if max_bytes is not None and isinstance(size, int) and size > max_bytes:
        raise PayloadTooLarge(what="The import file", limit=max_bytes, field="file")
    lines = _physical_lines(fileobj, max_bytes=max_bytes)
    head = list(_take_until_content(lines))
    fmt = _pick_format(fmt=fmt, filename=filename, head=head)
    lines = _chain(head, lines)
    errors = _Errors()
    result = ImportResult(format=fmt, labels=labels)
    if fmt not in NATIVE_FORMATS:
        result.source = source or import_formats.BY_NAME[fmt].SOURCE
    with transaction.atomic():
        # Imports into one project run one at a time (a no-op on SQLite, whose writers queue anyway).
        list(Project.objects.select_for_update().filter(pk=project.pk).values_list("pk"))
        writer = BatchWriter(
            project=project, result=result, errors=errors, update=mode == "update", batch_size=BATCH_SIZE
        )
        seen = 0
        # The lines are read and checked on a second thread while this one writes (read_ahead.py),
        # and a batch is encoded on a third while this one sends the one before (import_writing.py).
        with writer, read_ahead(lambda reports: _events(fmt, lines, head, reports)) as events:
            for kind, line, value in events:
                if kind == REPORT:
                    errors.add(line, value)
                    continue
                seen += 1
                if kind == _ROW:
                    writer.add(value)
                elif kind == _NOTE:
                    result.notes.add(line, value)
                else:
                    errors.add(line, value)
            writer.finish()
        errors.raise_if_any()
        if not seen:
            raise InvalidInput("The file holds no prompts.", field="file")
    return result


_ROW, _NOTE, _REJECTED = "row", "note", "rejected"


def _events(fmt: str, lines: Iterator, head: list, reports) -> Iterator[tuple[str, int, object]]:
    """(kind, line, value) for each record of the file, checked: a row to write, a note, or a rejection.

    Runs on the reading thread: it changes nothing itself, and its readers' line reports go to
    `reports`, which hands them on in order.
    """
    if fmt in NATIVE_FORMATS:
        records = _jsonl_records(lines, reports) if fmt == "jsonl" else _csv_records(lines, reports)
        outcomes = (Item(line, obj) for line, obj in records)
    else:
        outcomes = import_formats.BY_NAME[fmt].read(_public_records(lines, head, reports))
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            yield _REJECTED, outcome.line, outcome.reason
        elif isinstance(outcome, Passed):
            yield _NOTE, outcome.line, outcome.note
        else:
            try:
                yield _ROW, outcome.line, _clean_record(outcome.obj, line=outcome.line, labels=outcome.labels)
            except LineError as exc:
                yield _REJECTED, outcome.line, str(exc)


# Reading ---------------------------------------------------------------------------------------


def _physical_lines(fileobj, *, max_bytes: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) for each line; None for a line that is too long.

    Reads fixed-size chunks, so a line without an end is never held whole in memory. Past
    max_bytes in all it raises PayloadTooLarge (inside the import's transaction, which rolls back).
    """
    number, parts, size, too_long, total = 0, [], 0, False, 0
    while True:
        chunk = fileobj.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogatepass")
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise PayloadTooLarge(what="The import file", limit=max_bytes, field="file")
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not too_long:
                size += len(piece)
                if size > MAX_LINE_BYTES:
                    too_long, parts = True, []
                else:
                    parts.append(piece)
            if end < 0:
                break
            number += 1
            yield number, None if too_long else b"".join(parts)
            parts, size, too_long, start = [], 0, False, end + 1
    if parts or too_long:
        number += 1
        yield number, None if too_long else b"".join(parts)


def _take_until_content(lines: Iterator) -> Iterator:
    """The leading lines up to and including the first one that is not blank (to sniff the format)."""
    for item in lines:
        yield item
        if item[1] is None or item[1].strip():
            return


def _chain(head: list, rest: Iterator) -> Iterator:
    yield from head
    yield from rest


def _pick_format(*, fmt: str | None, filename: str, head: list) -> str:
    """The format named, else the file's: a JSON array is Label Studio's, a JSON object's keys tell the
    public format (native if none matches), anything else goes by the extension, else CSV."""
    if fmt:
        fmt = fmt.lower() if isinstance(fmt, str) else ""
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
        return fmt
    first = head[-1][1] if head else b""
    first = (first or b"").lstrip(b"\xef\xbb\xbf \t\r")
    match = re.search(r"\.[A-Za-z0-9]+$", filename or "")
    by_name = EXTENSIONS.get(match.group(0).lower()) if match else None
    if by_name == "csv":
        return "csv"
    if first.startswith(b"["):
        return import_formats.label_studio.NAME
    if first.startswith(b"{"):
        try:
            module = import_formats.detect(json.loads(first.decode("utf-8")))
        except (ValueError, RecursionError):
            module = None  # the native reader names the line's problem
        return module.NAME if module is not None else "jsonl"
    return by_name or "csv"


def _public_records(lines: Iterable, head: list, errors: Reports) -> Iterator[tuple[int, object]]:
    """A public format's objects: one JSON array (Label Studio's export) or one object per line."""
    first = (head[-1][1] or b"").lstrip(b"\xef\xbb\xbf \t\r") if head else b""
    if not first.startswith(b"["):
        yield from _jsonl_records(lines, errors)
        return
    text = lines_text(lines)
    if text is None:
        errors.add(1, "the file is not UTF-8 text, or a line is longer than allowed")
        return
    for line, element, problem in array_elements(text):
        if problem is None and not isinstance(element, dict):
            problem = f"the array's element is not a JSON object but a JSON {type(element).__name__}"
        if problem is None:
            problem = _storable_problem(element)
        if problem is not None:
            errors.add(line, problem)
            continue
        yield line, element


def _decode(line: int, raw: bytes | None) -> str:
    if raw is None:
        raise LineError(f"the line is longer than {MAX_LINE_BYTES} bytes (an oversized field)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"invalid UTF-8 at byte {exc.start + 1}") from None
    if line == 1:
        text = text.lstrip("\ufeff")
    return text


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_line_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def _jsonl_records(lines: Iterable, errors: Reports) -> Iterator[tuple[int, object]]:
    for number, raw in lines:
        try:
            text = _decode(number, raw)
        except LineError as exc:
            errors.add(number, str(exc))
            continue
        if not text.strip():
            continue
        try:
            # json.loads(text, parse_constant=...) builds a decoder per call; one made once decodes the same
            # (json.loads alone names a byte order mark, which only a first line may have).
            if text[:1] == "\ufeff":
                obj = json.loads(text, parse_constant=_reject_constant)
            else:
                obj = _line_decoder.decode(text)
        except json.JSONDecodeError as exc:
            errors.add(number, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except (ValueError, RecursionError) as exc:
            errors.add(number, f"malformed JSON: {exc}")
            continue
        if not json_text_is_plain(text) and (problem := _storable_problem(obj)):
            errors.add(number, problem)
            continue
        yield number, obj


def _csv_records(lines: Iterable, errors: Reports) -> Iterator[tuple[int, object]]:
    """Rows as JSONL-style objects. A quoted cell may span lines; errors name the row's first line."""

    def text_lines():
        for number, raw in lines:
            try:
                yield _decode(number, raw) + "\n"
            except LineError as exc:
                errors.add(number, str(exc))
                yield "\n"  # keeps csv's line count in step; the row is rejected already

    reader = csv.reader(text_lines(), strict=True)
    header, header_line = None, 0
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.add(start, f"malformed CSV: {exc}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header, header_line = [cell.strip().lower() for cell in cells], start
            if "prompt" not in header:
                errors.add(header_line, "the CSV header has no 'prompt' column")
                return
            continue
        if len(cells) > len(header):
            errors.add(start, f"the row has {len(cells)} cells but the header names {len(header)} columns")
            continue
        try:
            obj = _csv_object(dict(zip(header, cells)))
        except LineError as exc:
            errors.add(start, str(exc))
            continue
        problem = _storable_problem(obj)
        if problem:
            errors.add(start, problem)
            continue
        yield start, obj


def _storable_problem(obj) -> str | None:
    """NUL, a lone surrogate (keys too) or nesting past MAX_JSON_DEPTH, named by path; None if none.

    Checked before any other rule, whose messages may quote a value that could not be encoded.
    """
    problem = json_problem(obj)
    return None if problem is None else problem.message[:1].lower() + problem.message[1:].rstrip(".")


_RESPONSE_COLUMN = re.compile(r"^response_(\d+)$")


def _csv_object(cells: dict[str, str]) -> dict:
    obj: dict = {"prompt": cells.get("prompt", "")}
    if cells.get("id", "").strip():
        obj["id"] = cells["id"].strip()
    if cells.get("metadata", "").strip():
        obj["metadata"] = _json_cell(cells["metadata"], "metadata")
    numbered = sorted(
        (int(m.group(1)), value) for name, value in cells.items() if (m := _RESPONSE_COLUMN.match(name))
    )
    numbered = [value for _, value in numbered if value.strip()]
    if cells.get("gold", "").strip():
        obj["gold"] = _json_cell(cells["gold"], "gold")
    if cells.get("explanation", "").strip():
        obj["explanation"] = cells["explanation"]
    if cells.get("responses", "").strip():
        if numbered:
            raise LineError("give the responses either as a 'responses' JSON array or as response_N cells, not both")
        obj["responses"] = _json_cell(cells["responses"], "responses")
    elif numbered:
        obj["responses"] = numbered
    return obj


def _json_cell(value: str, name: str):
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise LineError(f"{name} is not valid JSON: {getattr(exc, 'msg', exc)}") from None


# Validation ------------------------------------------------------------------------------------


def _clean_text(value, name: str) -> str:
    if not isinstance(value, str):
        raise LineError(f"{name} must be a string")
    if not value.strip():
        raise LineError(f"{name} is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise LineError(f"{name} is longer than {MAX_FIELD_CHARS} characters (an oversized field)")
    return value


def _clean_messages(value, name: str = "messages") -> list[dict]:
    if not isinstance(value, list) or not value:
        raise LineError(f"{name} must be a non-empty list of {{role, content}} objects")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise LineError(f"{name}[{i}] must be an object with role and content")
        role = message["role"]
        if not isinstance(role, str):
            raise LineError(f"{name}[{i}].role must be a string")
        if role not in ROLES:
            raise LineError(f"{name}[{i}] has an unknown role '{role[:50]}' (use {', '.join(ROLES)})")
        messages.append({"role": role, "content": _clean_text(message["content"], f"{name}[{i}].content")})
    if messages[-1]["role"] != "user":
        raise LineError("the last message must be from the user")
    return messages


def _clean_record(obj, *, line: int, labels: list[Label] | None = None) -> ImportRow:
    if not isinstance(obj, dict):
        raise LineError(f"the line is not a JSON object but a JSON {type(obj).__name__}")
    unknown = sorted(set(obj) - set(KEYS))
    if unknown:
        raise LineError(f"unknown key '{unknown[0][:50]}' (use {', '.join(KEYS)})")
    if "prompt" in obj and "messages" in obj:
        raise LineError("give either prompt or messages, not both")
    if "prompt" in obj and isinstance(obj["prompt"], list) and obj["prompt"] and all(
        isinstance(message, dict) for message in obj["prompt"]
    ):
        messages = _clean_messages(obj["prompt"], "prompt")  # TRL's conversational prompt: a chat
    elif "prompt" in obj:
        messages = [{"role": "user", "content": _clean_text(obj["prompt"], "prompt")}]
    elif "messages" in obj:
        messages = _clean_messages(obj["messages"])
    else:
        raise LineError("missing prompt: give \"prompt\" (a string) or \"messages\" (a chat)")

    responses: list[str] = []
    if "responses" in obj and obj["responses"] is not None:
        value = obj["responses"]
        if not isinstance(value, list):
            raise LineError("responses must be a list of strings")
        if len(value) < 2:
            raise LineError(f"responses needs at least 2 entries to compare, not {len(value)}")
        if len(value) > MAX_RESPONSES:
            raise LineError(f"responses has {len(value)} entries; at most {MAX_RESPONSES} are shown")
        responses = [_clean_text(text, f"responses[{i}]") for i, text in enumerate(value)]
        if len(set(responses)) < len(responses):
            raise LineError("responses repeats the same text; each response must differ")

    gold = _clean_gold(obj, len(responses))
    labels = [_clean_label(label, responses=len(responses)) for label in labels or []]

    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise LineError("metadata must be a JSON object")
    if metadata and len(_plain_json(metadata)) > MAX_FIELD_CHARS:
        raise LineError(f"metadata is longer than {MAX_FIELD_CHARS} characters as JSON (an oversized field)")

    external_id, messages_json = obj.get("id"), None
    if external_id is None:
        messages_json = JsonText(_canonical_json(messages))
        external_id = _content_id(messages, responses, gold, messages_json=messages_json)
    elif isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
        raise LineError("id must be a string or an integer")
    else:
        external_id = str(external_id).strip()
        if not external_id:
            raise LineError("id is empty")
        if len(external_id) > MAX_ID_CHARS:
            raise LineError(f"id is longer than {MAX_ID_CHARS} characters (an oversized field)")
    return ImportRow(
        line=line, external_id=external_id, messages=messages, responses=responses, metadata=metadata, gold=gold,
        labels=labels, messages_json=messages_json,
    )


def _clean_label(label: Label, *, responses: int) -> Label:
    """An imported label checked against its line: a full ranking of the responses, or a demonstration."""
    if label.ranking is not None:
        if not responses:
            raise LineError("the label ranks responses, but the line has none")
        ranking = _clean_gold_ranking(label.ranking, responses, name="the label's ranking")
        tie = responses == 2 and len(ranking) == 1  # as a labeler's tie of a pair is stored
        return Label(ranking=ranking, strength=Annotation.Strength.TIE if tie else label.strength)
    if responses:
        raise LineError("the label is a demonstration, but the line has responses to compare")
    return Label(text=_clean_text(label.text, "the label's demonstration"))


_GOLD_SHAPES = '{"ranking": [[0], [1]]} for a comparison, {"reference": "..."} for a demonstration'


def _clean_gold(obj: dict, responses: int) -> dict | None:
    """The line's gold answer in its own terms, or None: {"ranking", "explanation"} or {"reference", "explanation"}."""
    gold, explanation = obj.get("gold"), obj.get("explanation")
    if gold is None:
        if explanation is not None:
            raise LineError('explanation explains a gold answer: give "gold" too, or leave the explanation out')
        return None
    if not isinstance(gold, dict):
        raise LineError(f"gold must be an object: {_GOLD_SHAPES}")
    unknown = sorted(set(gold) - {"ranking", "reference", "explanation"})
    if unknown:
        raise LineError(f"gold: unknown key '{unknown[0][:50]}' (use ranking, reference, explanation)")
    if "explanation" in gold and explanation is not None:
        raise LineError("give the explanation once, inside gold or beside it")
    explanation = gold.get("explanation", explanation)
    explanation = "" if explanation is None else _clean_text(explanation, "explanation")
    if responses:
        if "reference" in gold:
            raise LineError("gold.reference is for a demonstration: a comparison's gold is a ranking, e.g. [[0], [1]]")
        return {"ranking": _clean_gold_ranking(gold.get("ranking"), responses), "explanation": explanation}
    if "ranking" in gold:
        raise LineError('gold.ranking needs "responses" to rank; a demonstration\'s gold is {"reference": "..."}')
    if "reference" not in gold:
        raise LineError(f"gold needs an answer: {_GOLD_SHAPES}")
    return {"reference": _clean_text(gold["reference"], "gold.reference"), "explanation": explanation}


def _clean_gold_ranking(value, count: int, name: str = "gold.ranking") -> list[list[int]]:
    """Groups of response indexes (0 to count - 1), best first; every response exactly once."""
    if not isinstance(value, list) or not value:
        raise LineError(
            f"{name} must be a non-empty list of groups of response indexes, best first, e.g. [[0], [1]]"
        )
    groups, seen = [], set()
    for i, group in enumerate(value):
        group = group if isinstance(group, list) else [group]
        if not group:
            raise LineError(f"{name}[{i}] is an empty group")
        for index in group:
            if not isinstance(index, int) or isinstance(index, bool):
                raise LineError(f"{name}[{i}] holds {json.dumps(index)[:30]}, not a response index")
            if not 0 <= index < count:
                raise LineError(
                    f"{name}[{i}] names response {index}, but the line's responses are 0 to {count - 1}"
                )
            if index in seen:
                raise LineError(f"{name} names response {index} twice")
            seen.add(index)
        groups.append(list(group))
    if len(seen) < count:
        missing = ", ".join(str(i) for i in range(count) if i not in seen)
        raise LineError(f"{name} must place every response once; it leaves out {missing}")
    return groups


_plain_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(value, ensure_ascii=False), made once
_canonical_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode  # made once, not per line


def _content_id(
    messages: list[dict], responses: list[str], gold: dict | None = None, *, messages_json: str | None = None,
) -> str:
    """A stable id for a line without one: the same prompt, responses (and gold answer) give the same id.

    The hash is of json.dumps({"gold", "messages", "responses"}, ensure_ascii=False, sort_keys=True),
    put together from its parts in that (sorted) order, so that the messages' part (messages_json,
    when given) is also what the prompt's COPY writes.
    """
    parts = [] if gold is None else ['"gold": ' + _canonical_json(gold)]
    parts.append('"messages": ' + (_canonical_json(messages) if messages_json is None else messages_json))
    parts.append('"responses": ' + _canonical_json(responses))
    canonical = "{" + ", ".join(parts) + "}"
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]
