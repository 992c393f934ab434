"""Running the hot path's SQL, and the ORM lookups it shares with services and selectors.

The labeler API's next and submit run a handful of statements each (claim.py, submit.py,
reads.py). Built by the ORM, Django spent as long compiling them as PostgreSQL spent running them,
so they are written as SQL: `execute` runs one, prepared once per connection on PostgreSQL
(planning, too, cost more than running), and `load` turns the columns of a row into a model
instance exactly as the ORM would, with the same backend and field converters, so callers still
get ordinary instances.
"""

import re
import weakref
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

# Keyed by the driver's connection, so a reconnect prepares again.
_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()
# Keyed by Django's connection wrapper (one per thread): the converters are bound to its backend.
_converters: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def one_or_none(queryset: QuerySet):
    """The row of a lookup on a unique key, or None.

    `.first()` orders by the primary key: on the labeler API's hot path Django spent measurable
    time compiling that ORDER BY, and PostgreSQL sorting a result of at most one row.
    """
    return next(iter(queryset[:1]), None)


def _db():
    """This thread's connection wrapper, looked up once: each attribute read through
    django.db.connection is a thread-local lookup, and the hot path made dozens per request."""
    return connections[DEFAULT_DB_ALIAS]


def on_postgres() -> bool:
    return _db().vendor == "postgresql"


def execute(cursor, sql: str, params: list, *, name: str = "", types: tuple[str, ...] = ()) -> None:
    """Run a statement; on PostgreSQL a named one runs as a prepared statement with these types.

    The same text runs on SQLite (the demo's database), where it is executed as it is.
    """
    db = cursor.db
    if not (name and db.vendor == "postgresql"):
        cursor.execute(sql, params)
        return
    raw = db.connection
    names = _prepared.setdefault(raw, set())
    if name not in names:
        numbered = iter(range(1, len(types) + 1))
        body = re.sub(r"%s", lambda _: f"${next(numbered)}", sql)
        cursor.execute(f"PREPARE {name} ({', '.join(types)}) AS {body}")
        names.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


def fetch_one(sql: str, params: list, *, name: str = "", types: tuple[str, ...] = ()):
    with _db().cursor() as cursor:
        execute(cursor, sql, params, name=name, types=types)
        return cursor.fetchone()


def db_datetime(value: datetime):
    return _db().ops.adapt_datetimefield_value(value)


def db_value(model: type[Model], field: str, value):
    """A Python value of the field as a statement's parameter (a UUID as hex on SQLite, ...)."""
    return model._meta.get_field(field).get_db_prep_value(value, _db())


def columns(model: type[Model], alias: str) -> str:
    """The select list of every concrete column of the model, in the order `load` reads them."""
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def _field_converters(db, model: type[Model]) -> list:
    per_model = _converters.setdefault(db, {})
    found = per_model.get(model)
    if found is None:
        found = []
        for field in model._meta.concrete_fields:
            col = field.get_col(model._meta.db_table)
            found.append((field.attname, col, db.ops.get_db_converters(col) + col.get_db_converters(db)))
        per_model[model] = found
    return found


def column_value(model: type[Model], field: str, raw):
    """A column's value as the ORM would return it (a datetime from SQLite's text, ...)."""
    db = _db()
    for attname, col, converters in _field_converters(db, model):
        if attname == field:
            for convert in converters:
                raw = convert(raw, col, db)
            return raw
    raise LookupError(f"{model.__name__} has no column {field}")


def load(model: type[Model], row, start: int = 0) -> tuple[Model, int]:
    """The instance whose columns are row[start:], as `columns` selected them; and the index after them."""
    db = _db()
    converters = _field_converters(db, model)
    names, values = [], []
    for offset, (attname, col, convert_all) in enumerate(converters):
        raw = row[start + offset]
        for convert in convert_all:
            raw = convert(raw, col, db)
        names.append(attname)
        values.append(raw)
    return model.from_db(db.alias, names, values), start + len(converters)


_insert_sql: dict[tuple[type[Model], str], tuple[str, list]] = {}


def insert(instance: Model) -> Model:
    """INSERT a new instance as Model.save would (auto_now_add and the fields' own conversions), but
    without the ORM's insert compiler; sets its primary key. No model signals are sent: call it only
    for models that have no receivers (the labeler API's annotations and responses)."""
    db = _db()
    meta = instance._meta
    returning = db.features.can_return_columns_from_insert
    key = (type(instance), db.vendor)
    if key not in _insert_sql:
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        quote = db.ops.quote_name
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
               f" VALUES ({', '.join(['%s'] * len(fields))})")
        if returning:
            sql += f" RETURNING {quote(meta.pk.column)}"
        _insert_sql[key] = (sql, fields)
    sql, fields = _insert_sql[key]
    params = [f.get_db_prep_save(f.pre_save(instance, add=True), db) for f in fields]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        pk = cursor.fetchone()[0] if returning else db.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = db.alias
    return instance
