"""Many rows of one table in one statement, without building a model instance per row.

The import writes about seven rows per line of an HH-RLHF file (a prompt, two responses, a
task, two display positions and a label). Through bulk_create, Django spent most of the import's
CPU building model instances and preparing each value one by one. On PostgreSQL, rows_insert
sends each column as one array instead, `INSERT ... SELECT * FROM unnest(...) RETURNING id`,
so the driver adapts a list per column and the server unpacks it. A column whose rows all get
the same value (the project, the time, a default) travels once, as a scalar, and a UUID default
is made by the server (gen_random_uuid), so the driver adapts only the columns that vary. The ids
come back in the order of the rows, as they do for bulk_create (which uses the same statement
shape).

Every other column gets what the ORM would give it: its Python default (called per row where it
is callable, a UUID for instance), the time for auto_now fields, or the database's own default
where the field has db_default. On other databases (SQLite) the same rows go through bulk_create.
Columns are named from the models' _meta, never written by hand.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence

from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone


def rows_insert(model: type[models.Model], columns: Mapping[str, Sequence]) -> list[int]:
    """Insert len(any column) rows; columns maps a field name (or its attname) to one value per row.

    Returns the new primary keys in row order.
    """
    count = len(next(iter(columns.values()))) if columns else 0
    if not count:
        return []
    fields = _fields(model)
    given = {fields[name].attname: values for name, values in columns.items()}
    if connection.vendor != "postgresql":
        objects = [model(**{name: values[i] for name, values in given.items()}) for i in range(count)]
        return [obj.pk for obj in model.objects.bulk_create(objects)]
    now = timezone.now()
    names, selects, params = [], [], []
    arrays: list[tuple[str, list]] = []  # (SQL type, one value per row) for the columns that vary
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        kind = field.db_type(connection)
        if field.attname in given:
            values = list(given[field.attname])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values = [now]
        elif field.db_default is not NOT_PROVIDED:
            continue
        elif isinstance(field, models.UUIDField) and field.default is uuid.uuid4:
            names.append(connection.ops.quote_name(field.column))
            selects.append("gen_random_uuid()")  # a random UUID per row, as uuid4 gives, made by the server
            continue
        elif field.has_default() and callable(field.default):
            values = [field.default() for _ in range(count)]
        else:
            values = [field.get_default()]
        names.append(connection.ops.quote_name(field.column))
        if _constant(values):
            # One value for every row travels once, as a parameter, not as an array of copies.
            selects.append(f"%s::{kind}")
            params.append(_column(field, values[:1])[0])
        else:
            selects.append(f"u.c{len(arrays)}")
            arrays.append((kind, _column(field, values)))
    table = connection.ops.quote_name(model._meta.db_table)
    if arrays:
        source = (f"unnest({', '.join(f'%s::{kind}[]' for kind, _ in arrays)}) "
                  f"AS u({', '.join(f'c{i}' for i in range(len(arrays)))})")
        source_params = [values for _, values in arrays]
    else:
        source, source_params = "generate_series(1, %s)", [count]
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(selects)} FROM {source} "
        f"RETURNING {connection.ops.quote_name(model._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + source_params)
        return [row[0] for row in cursor.fetchall()]


def _constant(values: list) -> bool:
    """Whether every row gets the same value (the same object, or an equal one of a plain type)."""
    first = values[0]
    if len(values) == 1:
        return True
    if isinstance(first, (dict, list)):
        return all(value is first for value in values)
    return all(type(value) is type(first) and value == first for value in values)


def _fields(model) -> dict[str, models.Field]:
    """The model's columns by field name and by attname ("prompt" and "prompt_id" alike)."""
    fields = {}
    for field in model._meta.concrete_fields:
        fields[field.name] = field
        fields[field.attname] = field
    return fields


def _column(field: models.Field, values: list) -> list:
    """Values as the driver adapts them: JSON as text (cast to jsonb by the statement), UUIDs as text."""
    if isinstance(field, models.JSONField):
        # A default repeats one object down the column: encode it once.
        encoded: dict[int, str | None] = {}
        column = []
        for value in values:
            text = encoded.get(id(value))
            if text is None and value is not None:
                text = encoded[id(value)] = json.dumps(value, ensure_ascii=False)
            column.append(text)
        return column
    if isinstance(field, models.UUIDField):
        return [None if value is None else str(value) for value in values]
    return values
