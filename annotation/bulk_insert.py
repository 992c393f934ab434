"""Many rows of one table at once, without building a model instance per row.

The import writes about seven rows per line of an HH-RLHF file (a prompt, two responses, a
task, two display positions and a label). On PostgreSQL, rows_insert streams them with COPY, one
statement per table and batch: the server reads tab-separated text through its bulk-load path
(whole pages of rows at a time) instead of planning an INSERT whose arrays the driver quoted
value by value. COPY returns nothing, so when the caller needs the new primary keys they are
taken from the table's sequence first (one query, `nextval` per row) and written with the rows;
they come back in row order, as bulk_create's do. Triggers and constraints run as for an INSERT:
the progress counters' statement trigger sees the COPY's rows, and the foreign keys are checked
at commit. A COPY is one statement of the import's transaction, so a failure anywhere still
rolls back everything.

rows_insert does all of that at once. An import that wants its next batch encoded while the
server stores the last one takes the steps apart: ids_reserve (the keys of several tables in
one query), copy_prepared (the statement and its text, on any thread) and copy_run (on the
connection's thread).

Every column the caller leaves out gets what the ORM would give it: its Python default (called
per row where it is callable; a random UUID is made from os.urandom in bulk, cheaper than uuid4
per row), the time for auto_now fields, or the database's own default where the field has
db_default. A column whose rows all share a value is encoded once. On other databases (SQLite)
the same rows go through bulk_create. Columns are named from the models' _meta, never by hand.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

COPY_READ_BYTES = 1 << 20  # how much of a COPY's text the driver sends at a time


def rows_insert(model: type[models.Model], columns: Mapping[str, Sequence], *, returning: bool = True) -> list[int]:
    """Insert len(any column) rows; columns maps a field name (or its attname) to one value per row.

    Returns the new primary keys in row order, or [] with returning=False (PostgreSQL then takes
    them from the sequence as it writes).
    """
    count = len(next(iter(columns.values()))) if columns else 0
    if not count:
        return []
    if connection.vendor != "postgresql":
        fields = _fields(model)
        given = {fields[name].attname: values for name, values in columns.items()}
        objects = [model(**{name: values[i] for name, values in given.items()}) for i in range(count)]
        created = model.objects.bulk_create(objects)
        return [obj.pk for obj in created] if returning else []
    ids = ids_reserve([(model, count)])[0] if returning else None
    copy_run(copy_prepared(model, columns, ids=ids, quote=connection.ops.quote_name))
    return ids or []


@dataclass(frozen=True)
class Copy:
    """One table's rows as a COPY statement and its tab-separated text, ready to send."""

    statement: str
    data: str


def copy_prepared(
    model: type[models.Model], columns: Mapping[str, Sequence], *, ids: Sequence[int] | None,
    quote: Callable[[str], str],
) -> Copy:
    """The COPY that inserts len(any column) rows, with primary keys `ids` (None: the sequence's).

    Touches no database, so it may run on another thread than the connection's while that one
    sends an earlier COPY; quote is the connection's quote_name.
    """
    count = len(next(iter(columns.values())))
    fields = _fields(model)
    given = {fields[name].attname: values for name, values in columns.items()}
    now = timezone.now()
    names: list[str] = []
    texts: list = []  # per column: its COPY text per row, or repeat(text) for a column that is constant
    for field in model._meta.concrete_fields:
        if field.primary_key:
            if ids is not None:
                names.append(field.column)
                texts.append(map(str, ids))
            continue
        if field.attname in given:
            values = given[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values = [now]
        elif field.db_default is not NOT_PROVIDED:
            continue
        elif isinstance(field, models.UUIDField) and field.default is uuid.uuid4:
            names.append(field.column)
            texts.append(random_uuids(count))
            continue
        elif field.has_default() and callable(field.default):
            values = [field.default() for _ in range(count)]
        else:
            values = [field.get_default()]
        names.append(field.column)
        if _constant(values):
            texts.append(repeat(_encoded(field, values[:1])[0], count))
        else:
            texts.append(_encoded(field, values))
    quoted = ", ".join(quote(name) for name in names)
    data = "\n".join(map("\t".join, zip(*texts))) + "\n"
    return Copy(f"COPY {quote(model._meta.db_table)} ({quoted}) FROM STDIN", data)


def copy_run(copy: Copy) -> None:
    """Send a prepared COPY on this thread's connection (the driver lets other threads run meanwhile)."""
    with connection.cursor() as cursor:
        cursor.copy_expert(copy.statement, io.StringIO(copy.data), size=COPY_READ_BYTES)


_sequences: dict[str, str] = {}


def ids_reserve(wanted: Sequence[tuple[type[models.Model], int]]) -> list[list[int]]:
    """For each (model, count), count new primary keys from its table's sequence, ascending; one query
    for them all. No other writer gets them."""
    parts, params = [], []
    with connection.cursor() as cursor:
        for model, count in wanted:
            table = model._meta.db_table
            sequence = _sequences.get(table)
            if sequence is None:
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, model._meta.pk.column])
                sequence = _sequences[table] = cursor.fetchone()[0]
            parts.append("ARRAY(SELECT nextval(%s::regclass) FROM generate_series(1, %s))")
            params += [sequence, count]
        cursor.execute("SELECT " + ", ".join(parts), params)
        return [list(ids) for ids in cursor.fetchone()]


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def random_uuids(count: int) -> list[str]:
    """count random (version 4) UUIDs as text, from one read of os.urandom: what uuid4 gives, 3x faster."""
    h = os.urandom(16 * count).hex()
    return [
        f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17:i + 20]}-{h[i + 20:i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def _constant(values: Sequence) -> bool:
    """Whether every row gets the same value (the same object, or an equal one of a plain type)."""
    first = values[0]
    if len(values) == 1:
        return True
    if isinstance(first, (dict, list)):
        return all(value is first for value in values)
    # Both counts run in C; the type check keeps True from passing for 1.
    return len(set(map(type, values))) == 1 and values.count(first) == len(values)


def _fields(model) -> dict[str, models.Field]:
    """The model's columns by field name and by attname ("prompt" and "prompt_id" alike)."""
    fields = {}
    for field in model._meta.concrete_fields:
        fields[field.name] = field
        fields[field.attname] = field
    return fields


def _escape(text: str) -> str:
    """Text as a COPY field: its backslashes and the separators (tab, newline, carriage return) escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _escape_all(texts: list[str]) -> list[str]:
    """_escape of each text, done on the whole column at once: joined by NUL, escaped, split again.

    PostgreSQL stores no NUL in text, so none is expected; a text holding one is escaped on its
    own instead (and the server then rejects it), so that no value can shift into the next row.
    """
    joined = "\0".join(texts)
    escaped = _escape(joined)
    if escaped is joined:
        return texts
    column = escaped.split("\0")
    return column if len(column) == len(texts) else [_escape(text) for text in texts]


def _encoded(field: models.Field, values: Sequence) -> list[str]:
    """The column's values as COPY text: \\N for NULL, JSON for a JSONField, the value's text otherwise."""
    if isinstance(field, models.JSONField):
        encode = _json_encoder(field)
        # A default repeats one object down the column, and most metadata is empty: encode those once.
        encoded: dict[int, str] = {}
        column = []
        for value in values:
            if value is None:
                column.append(None)
            elif type(value) is JsonText:
                column.append(value)
            elif not value and type(value) in (dict, list):
                column.append("{}" if type(value) is dict else "[]")
            else:
                text = encoded.get(id(value))
                if text is None:
                    text = encoded[id(value)] = encode(value)
                column.append(text)
        if None not in column:
            return _escape_all(column)
        return ["\\N" if text is None else _escape(text) for text in column]
    kinds = set(map(type, values))
    if all(issubclass(kind, str) for kind in kinds):
        return _escape_all(list(values))
    if kinds == {int}:
        return list(map(str, values))
    return [_value_text(value) for value in values]


class JsonText(str):
    """A JSONField's value given as its JSON text already (made while the line was checked): COPY writes it as it is."""


_encoders: dict[type | None, json.JSONEncoder] = {}


def _json_encoder(field: models.JSONField):
    """One encoder per JSONField encoder class, made once: json.dumps with options builds a new one per call."""
    encoder = _encoders.get(field.encoder)
    if encoder is None:
        encoder = _encoders[field.encoder] = (field.encoder or json.JSONEncoder)(ensure_ascii=False)
    return encoder.encode


def _value_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, uuid.UUID)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"rows_insert cannot write a {type(value).__name__} to COPY")
