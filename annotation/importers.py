"""Prompt import: JSONL or CSV in, prompts and tasks out. See DESIGN.md "Formats".

One object per line (JSONL) or one row per prompt (CSV):

    {"id": "q1", "prompt": "Name a prime.", "metadata": {"topic": "math"}}
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    {"prompt": "Which is kinder?", "responses": ["Answer A", "Answer B", "Answer C"]}

A line with "responses" (2..MAX_RESPONSES strings) makes a comparison task that shows them in a
random display order; any other line makes a demonstration task. "id" becomes the prompt's
external_id; without one a hash of the content stands in, so importing a file twice adds nothing.

The import is atomic and streamed: the file is read once, line by line, and valid prompts are
written in batches inside one transaction. The first bad line stops the writing; the rest of
the file is still read so that the error names every bad line; then the transaction rolls back.
Memory holds one batch, not the file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from django.db import transaction

from .errors import InvalidInput
from .models import Project, Prompt, Response, Task, TaskResponse

FORMATS = ("jsonl", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
ROLES = ("user", "assistant", "system")
KEYS = ("id", "prompt", "messages", "responses", "metadata")

MAX_FIELD_CHARS = 50_000  # the longest prompt, message, response or metadata (as JSON) we take
MAX_LINE_BYTES = 32 * 1024 * 1024  # a longer line is rejected without being held in memory
MAX_ID_CHARS = 200  # Prompt.external_id
MAX_RESPONSES = 16
MAX_REPORTED_ERRORS = 1000
BATCH_SIZE = 1000
READ_CHUNK_BYTES = 64 * 1024


@dataclass
class ImportResult:
    created_prompts: int = 0
    created_tasks: int = 0
    skipped_existing: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class LineError(Exception):
    """One line's reason for rejection."""


@dataclass
class _Row:
    line: int
    external_id: str
    messages: list[dict]
    responses: list[str]
    metadata: dict


@dataclass
class _Errors:
    count: int = 0
    items: list[dict] = field(default_factory=list)
    lines: set = field(default_factory=set)

    def add(self, line: int, error: str) -> None:
        if line in self.lines:
            return  # one reason per line is enough
        self.count += 1
        self.lines.add(line)
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"line": line, "error": error})

    def raise_if_any(self) -> None:
        if not self.count:
            return
        noun = "line is" if self.count == 1 else "lines are"
        message = f"{self.count} {noun} invalid"
        if self.count > len(self.items):
            message += f"; the first {len(self.items)} are listed, {self.count - len(self.items)} more are not"
        items = sorted(self.items, key=lambda item: item["line"])
        raise InvalidInput(message + ". Nothing was imported.", field="file", details=items)


def prompts_import(*, project: Project, fileobj, filename: str = "", fmt: str | None = None) -> ImportResult:
    """Import prompts from a binary file object (an UploadedFile, or open(path, "rb")).

    Raises InvalidInput(field="file") naming every bad line, and then nothing is stored.
    """
    lines = _physical_lines(fileobj)
    head = list(_take_until_content(lines))
    fmt = _pick_format(fmt=fmt, filename=filename, head=head)
    lines = _chain(head, lines)
    errors = _Errors()
    records = _jsonl_records(lines, errors) if fmt == "jsonl" else _csv_records(lines, errors)
    result = ImportResult()
    with transaction.atomic():
        # Imports into one project run one at a time (a no-op on SQLite, whose writers queue anyway).
        list(Project.objects.select_for_update().filter(pk=project.pk).values_list("pk"))
        writer = _BatchWriter(project=project, result=result, errors=errors)
        seen = 0
        for line, obj in records:
            seen += 1
            try:
                row = _clean_record(obj, line=line)
            except LineError as exc:
                errors.add(line, str(exc))
                continue
            writer.add(row)
        writer.flush()
        errors.raise_if_any()
        if not seen:
            raise InvalidInput("The file holds no prompts.", field="file")
    return result


# Reading ---------------------------------------------------------------------------------------


def _physical_lines(fileobj) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) for each line; None for a line that is too long.

    Reads fixed-size chunks, so a line without an end is never held whole in memory.
    """
    number, parts, size, too_long = 0, [], 0, False
    while True:
        chunk = fileobj.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogatepass")
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
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
        return fmt
    match = re.search(r"\.[A-Za-z0-9]+$", filename or "")
    if match and match.group(0).lower() in EXTENSIONS:
        return EXTENSIONS[match.group(0).lower()]
    first = head[-1][1] if head else b""
    first = (first or b"").lstrip(b"\xef\xbb\xbf \t\r")
    return "jsonl" if first.startswith(b"{") else "csv"


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


def _jsonl_records(lines: Iterable, errors: _Errors) -> Iterator[tuple[int, object]]:
    for number, raw in lines:
        try:
            text = _decode(number, raw)
        except LineError as exc:
            errors.add(number, str(exc))
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            errors.add(number, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except (ValueError, RecursionError) as exc:
            errors.add(number, f"malformed JSON: {exc}")
            continue
        yield number, obj


def _csv_records(lines: Iterable, errors: _Errors) -> Iterator[tuple[int, object]]:
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
            yield start, _csv_object(dict(zip(header, cells)))
        except LineError as exc:
            errors.add(start, str(exc))


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
    if "\x00" in value:
        raise LineError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineError(f"{name} contains invalid Unicode (a lone surrogate)") from None
    return value


def _clean_messages(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise LineError("messages must be a non-empty list of {role, content} objects")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise LineError(f"messages[{i}] must be an object with role and content")
        role = message["role"]
        if not isinstance(role, str):
            raise LineError(f"messages[{i}].role must be a string")
        if role not in ROLES:
            raise LineError(f"messages[{i}] has an unknown role '{role[:50]}' (use {', '.join(ROLES)})")
        messages.append({"role": role, "content": _clean_text(message["content"], f"messages[{i}].content")})
    if messages[-1]["role"] != "user":
        raise LineError("the last message must be from the user")
    return messages


def _clean_record(obj, *, line: int) -> _Row:
    if not isinstance(obj, dict):
        raise LineError(f"the line is not a JSON object but a JSON {type(obj).__name__}")
    unknown = sorted(set(obj) - set(KEYS))
    if unknown:
        raise LineError(f"unknown key '{unknown[0][:50]}' (use {', '.join(KEYS)})")
    if "prompt" in obj and "messages" in obj:
        raise LineError("give either prompt or messages, not both")
    if "prompt" in obj:
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

    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise LineError("metadata must be a JSON object")
    encoded = json.dumps(metadata, ensure_ascii=False)
    if len(encoded) > MAX_FIELD_CHARS:
        raise LineError(f"metadata is longer than {MAX_FIELD_CHARS} characters as JSON (an oversized field)")
    if "\\u0000" in encoded:
        raise LineError("metadata contains a NUL character")
    try:
        encoded.encode("utf-8")
    except UnicodeEncodeError:
        raise LineError("metadata contains invalid Unicode (a lone surrogate)") from None

    external_id = obj.get("id")
    if external_id is None:
        external_id = _content_id(messages, responses)
    elif isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
        raise LineError("id must be a string or an integer")
    else:
        external_id = str(external_id).strip()
        if not external_id:
            raise LineError("id is empty")
        if len(external_id) > MAX_ID_CHARS:
            raise LineError(f"id is longer than {MAX_ID_CHARS} characters (an oversized field)")
        if "\x00" in external_id:
            raise LineError("id contains a NUL character")
    return _Row(line=line, external_id=external_id, messages=messages, responses=responses, metadata=metadata)


def _content_id(messages: list[dict], responses: list[str]) -> str:
    """A stable id for a line without one: the same prompt and responses give the same id."""
    canonical = json.dumps({"messages": messages, "responses": responses}, ensure_ascii=False, sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


# Writing ---------------------------------------------------------------------------------------


class _BatchWriter:
    """Writes valid rows a batch at a time; after the first error it only keeps checking ids.

    A duplicate id within the file is caught in the batch, or, across batches, because the
    earlier row is already in the database with a pk from this import (the project row is
    locked, so no other import adds rows to it meanwhile). Once writing has stopped, ids of
    later lines are remembered in memory to keep catching duplicates; a bad file is rejected anyway.
    """

    def __init__(self, *, project: Project, result: ImportResult, errors: _Errors):
        self.project = project
        self.result = result
        self.errors = errors
        self.batch: dict[str, _Row] = {}
        self.first_pk: int | None = None
        self.ids_after_error: set[str] = set()
        self.rng = random.Random()

    def add(self, row: _Row) -> None:
        earlier = self.batch.get(row.external_id)
        if earlier is not None:
            self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on line {earlier.line})")
            return
        if self.errors.count:
            if row.external_id in self.ids_after_error:
                self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on an earlier line)")
                return
            self.ids_after_error.add(row.external_id)
        self.batch[row.external_id] = row
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        rows, self.batch = list(self.batch.values()), {}
        existing = dict(
            Prompt.objects.filter(project=self.project, external_id__in=[r.external_id for r in rows])
            .values_list("external_id", "pk")
        )
        new = []
        for row in rows:
            pk = existing.get(row.external_id)
            if pk is None:
                new.append(row)
            elif self.first_pk is not None and pk >= self.first_pk:
                self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on an earlier line)")
            else:
                self.result.skipped_existing += 1
        if self.errors.count or not new:
            return
        self._write(new)

    def _write(self, rows: list[_Row]) -> None:
        project = self.project
        prompts = Prompt.objects.bulk_create(
            [Prompt(project=project, messages=r.messages, external_id=r.external_id, metadata=r.metadata) for r in rows]
        )
        if self.first_pk is None:
            self.first_pk = min(p.pk for p in prompts)
        tasks = Task.objects.bulk_create(
            [
                Task(
                    project=project,
                    prompt=prompt,
                    kind=Task.Kind.COMPARISON if row.responses else Task.Kind.DEMONSTRATION,
                    required=project.overlap,
                )
                for row, prompt in zip(rows, prompts)
            ]
        )
        shown = [(task, prompt, row) for row, prompt, task in zip(rows, prompts, tasks) if row.responses]
        responses = Response.objects.bulk_create(
            [
                Response(prompt=prompt, text=text, source=Response.Source.IMPORT)
                for _, prompt, row in shown
                for text in row.responses
            ]
        )
        links, it = [], iter(responses)
        for task, _, row in shown:
            positions = list(range(len(row.responses)))
            self.rng.shuffle(positions)
            links.extend(TaskResponse(task=task, response=next(it), position=p) for p in positions)
        TaskResponse.objects.bulk_create(links)
        self.result.created_prompts += len(prompts)
        self.result.created_tasks += len(tasks)
