"""Table and column names for the hot path's SQL, read from the models' _meta.

A statement is written as a template: `{task}` is the task table, `{task.done}` its `done` column,
`{lease.task}` the lease's foreign key column (task_id), and `{open}` the quoted value of an open
task's status. `sql()` fills these in once, when the module that holds the statement is imported;
placeholders it does not know (`{kind}`, `{lock}`) stay for the caller to fill per call. So a
renamed table or column changes here by itself, and a misspelt field fails at import.
"""

import re

from django.db.models import Model

from ..models import Annotation, GoldRecord, Lease, Membership, Project, Prompt, Response, Task, TaskResponse

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


def quoted(name: str) -> str:
    """The identifier as SQL spells it: bare when it is plain lower case (as Django names them), else quoted."""
    return name if _PLAIN.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A choice's value as an SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


class Table:
    """A model's table in a template: formats as its name; each attribute is a field's column."""

    def __init__(self, model: type[Model]):
        self.model = model

    def __format__(self, spec: str) -> str:
        return quoted(self.model._meta.db_table)

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        return quoted(self.model._meta.get_field(field).column)


NAMES = {
    "annotation": Table(Annotation),
    "goldrecord": Table(GoldRecord),
    "lease": Table(Lease),
    "membership": Table(Membership),
    "project": Table(Project),
    "prompt": Table(Prompt),
    "response": Table(Response),
    "task": Table(Task),
    "taskresponse": Table(TaskResponse),
    # The choices the statements compare with.
    "open": literal(Task.Status.OPEN),
    "comparison": literal(Task.Kind.COMPARISON),
    "qualifying": literal(GoldRecord.Status.QUALIFYING),
    "rejected": literal(Annotation.ReviewState.REJECTED),
    "corrected": literal(Annotation.ReviewState.CORRECTED),
}


class _KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def sql(template: str, **fragments: str) -> str:
    """The template with the names (and `fragments`, SQL of rules.py) filled in; other placeholders stay."""
    return template.format_map(_KeepUnknown(NAMES, **fragments))
