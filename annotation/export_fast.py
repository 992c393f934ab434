"""The sft, preference and raw exports at database speed: a batch of lines per batch of rows.

Each writer reads one values_list() query (export_scope.kept_annotations: the filters, on
annotation.project_id, in id order) through export_stream.row_batches. Lines are assembled as
strings in the order json.dumps would write them: string values go through json's own C encoder
(the one json.dumps uses with ensure_ascii=False) and JSON columns are passed through as the JSON
text PostgreSQL sends. On PostgreSQL, PostgreSQL itself builds each raw line whole (the
labeler's fields from maps Python passes in) and each plain pair's preference line
(export_sql.py), so Python only passes them on, as bytes for the streamed response; other
preference rows' texts come in one query per batch. Elsewhere (SQLite) every line is
made here. The output is the reference writers' (export_reference.py), byte for byte; tests
check it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from json.encoder import encode_basestring as _string

from django.db import connection
from django.db.models import F, Q, TextField, Value

from .export_pairs import RANK_GAP_MARGIN, annotation_pairs
from .export_reference import review_flags, review_state_name
from .export_scope import ExportScope, kept_annotations, labeler_pseudonym, sft_rows
from .export_sql import PREFERENCE_COLUMNS, RAW_COLUMNS, UNKNOWN_COMPETENCE, UNKNOWN_PSEUDONYM, preference_sql, raw_sql
from .export_stream import BATCH_ROWS, json_text, raw_rows, row_batches, rows_by_ids
from .models import Annotation, Project, Response, TaskResponse

_BOOL = {True: "true", False: "false"}
_ASSISTANT = '{"role": "assistant", "content": '
_value = json.JSONEncoder(ensure_ascii=False).encode  # a value that is not a string: a number, null


_TEXTS = f"SELECT id, text FROM {Response._meta.db_table} WHERE id = ANY(%s)"


def fast_batches(
    *, project: Project, fmt: str, scope: ExportScope, batch_rows: int = BATCH_ROWS, two_backends: bool = False,
    binary: bool = False,
) -> Iterator[list[str]] | Iterator[list[bytes]]:
    """Lists of export lines, one list per batch of annotation rows read (empty lists are skipped).

    two_backends: a big preference or raw export is read by two PostgreSQL backends in a
    REPEATABLE READ transaction of its own (export_stream.row_batches, export_halves.py).
    binary: the lines as UTF-8 bytes. The raw lines PostgreSQL writes then pass from the driver
    to the caller as the bytes they came as, never decoded (export_stream.text_as_bytes); the
    other writers' lines are encoded.
    """
    if fmt == "raw":
        return _raw(project=project, scope=scope, batch_rows=batch_rows, two_backends=two_backends, binary=binary)
    if fmt == "sft":
        batches = _sft(project=project, scope=scope, batch_rows=batch_rows)
    else:
        batches = _preference(project=project, scope=scope, batch_rows=batch_rows, two_backends=two_backends)
    return _encoded(batches) if binary else batches


def _encoded(batches: Iterator[list[str]]) -> Iterator[list[bytes]]:
    try:
        for batch in batches:
            yield [line.encode() for line in batch]
    finally:
        batches.close()  # a caller that stops early ends the export's transaction now, not when collected


def _with_assistant_turn(messages: str, content: str) -> str:
    """A chat's JSON text with one more assistant turn at its end."""
    turn = f"{_ASSISTANT}{content}}}]"
    return "[" + turn if messages == "[]" else f"{messages[:-1]}, {turn}"


def _sft(*, project: Project, scope: ExportScope, batch_rows: int) -> Iterator[list[str]]:
    as_json = json_text()
    query = kept_annotations(project=project, scope=scope, where=sft_rows()).values_list(
        "kind", "text", "edited_response__text", "task__prompt__messages"
    )
    for batch in row_batches(query, batch_rows=batch_rows):
        lines = []
        for kind, text, edit, messages in batch:
            answer = _string(text if kind == "demonstration" else edit)
            lines.append(f'{{"messages": {_with_assistant_turn(as_json(messages), answer)}}}\n')
        yield lines


def _response_texts(ids: set[int]) -> dict[int, str]:
    """Each response's text as a JSON string, by id (a deleted response is missing)."""
    if not ids:
        return {}
    def orm():
        return Response.objects.filter(pk__in=ids).values_list("pk", "text")

    rows = rows_by_ids(sql=_TEXTS, ids=list(ids), orm=orm)
    return {pk: _string(text) for pk, text in rows}


def _preference(*, project: Project, scope: ExportScope, batch_rows: int, two_backends: bool) -> Iterator[list[str]]:
    as_json = json_text()
    raw = raw_rows()
    query = kept_annotations(project=project, scope=scope, where=Q(kind=Annotation.Kind.COMPARISON)).annotate(
        export_original=F("edited_response__edited_from_id"), export_messages=F("task__prompt__messages")
    )
    if raw:  # a plain pair's line comes whole from PostgreSQL (export_sql.preference_sql)
        query = query.values_list(*PREFERENCE_COLUMNS)
        wrap = partial(preference_sql, plain_margin=repr(float(RANK_GAP_MARGIN)))
    else:
        query = query.annotate(export_line=Value(None, output_field=TextField()))
        query, wrap = query.values_list("id", "export_line", *PREFERENCE_COLUMNS[1:]), None
    for batch in row_batches(query, batch_rows=batch_rows, wrap=wrap, two_backends=two_backends):
        made, ids = [], set()  # made: a ready line, or (messages, pairs) waiting for the batch's texts
        for _, line, ranking, strength, all_bad, edit, original, messages in batch:
            if line is not None:
                made.append(line)
                continue
            pairs = annotation_pairs(
                ranking=json.loads(ranking) if raw else ranking, strength=strength, all_bad=all_bad,
                edit=(edit, original) if edit is not None and original is not None else None,
            )
            if pairs:
                made.append((messages, pairs))
                for better, worse, _ in pairs:
                    ids.add(better)
                    ids.add(worse)
        if not ids:
            if made:
                yield made
            continue
        texts = _response_texts(ids)
        lines = []
        for item in made:
            if isinstance(item, str):
                lines.append(item)
                continue
            messages, pairs = item
            head = f'{{"prompt": {as_json(messages)}, "chosen": [{_ASSISTANT}'
            for better, worse, margin in pairs:
                chosen, rejected = texts.get(better), texts.get(worse)
                if chosen is None or rejected is None:
                    continue  # a response deleted since: the pair cannot be rebuilt
                lines.append(f'{head}{chosen}}}], "rejected": [{_ASSISTANT}{rejected}}}], "margin": {margin!r}}}\n')
        if lines:
            yield lines


def _shown(task_ids: set[int]) -> dict[int, str]:
    """Each comparison task's responses in display order, as the raw export's JSON list (not PostgreSQL's way)."""
    if not task_ids:
        return {}
    links = (
        TaskResponse.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "position")
        .values_list("task_id", "response_id", "response__text")
    )
    shown: dict[int, list[str]] = {}
    for task_id, response_id, text in links:
        shown.setdefault(task_id, []).append(f'{{"id": {response_id}, "text": {_string(text)}}}')
    return {task_id: "[" + ", ".join(items) + "]" for task_id, items in shown.items()}


# The columns of other tables that the raw export reads (export_sql.RAW_COLUMNS names them).
_RAW_JOINED = {
    "export_task_kind": F("task__kind"), "export_external_id": F("task__prompt__external_id"),
    "export_messages": F("task__prompt__messages"), "export_original": F("edited_response__edited_from_id"),
    "export_edit_text": F("edited_response__text"),
}


def _who(labeler_id: int | None, external_source: str, competence: dict[int, float]) -> str:
    """The labeler's three fields of a raw line, as JSON (an imported label has a source and no labeler)."""
    return (
        f'"labeler": {_string(labeler_pseudonym(labeler_id)) if labeler_id is not None else "null"}, '
        f'"external_source": {_string(external_source) if external_source else "null"}, '
        f'"labeler_competence": {_value(competence.get(labeler_id))}'
    )


def _raw(
    *, project: Project, scope: ExportScope, batch_rows: int, two_backends: bool, binary: bool
) -> Iterator[list[str]] | Iterator[list[bytes]]:
    competence = scope.competence or {}
    query = (
        kept_annotations(project=project, scope=scope, where=Q(kind__in=Annotation.Kind.values))
        .annotate(**review_flags(), **_RAW_JOINED)
        .values_list(*RAW_COLUMNS)
    )
    if not raw_rows():
        batches = _raw_portable(query, competence=competence, batch_rows=batch_rows)
        yield from (_encoded(batches) if binary else batches)
        return
    pseudonyms, competences = labeler_fields(_project_labelers(project.pk), competence)
    wrap = partial(raw_sql, pseudonyms=json.dumps(pseudonyms), competences=json.dumps(competences))
    unknown = _Unknown(competence, binary=binary)
    for batch in row_batches(query, batch_rows=batch_rows, wrap=wrap, two_backends=two_backends, binary=binary):
        lines = [line for _, line in batch]
        if unknown.marker in unknown.empty.join(lines):  # a labeler who labeled after the maps were read
            lines = [unknown.filled(line) for line in lines]
        yield lines


def labeler_fields(labelers: list[int], competence: dict[int, float]) -> tuple[dict[str, str], dict[str, str]]:
    """Each labeler's pseudonym and competence as the JSON text of a raw line, by labeler id: export_sql.raw_sql's maps."""
    pseudonyms = {str(labeler): _string(labeler_pseudonym(labeler)) for labeler in labelers}
    competences = {str(labeler): _value(competence.get(labeler)) for labeler in labelers}
    return pseudonyms, competences


def _project_labelers(project_id: int) -> list[int]:
    """The ids of the labelers of the project's annotations: one index probe per labeler (a loose index scan).

    The recursive query asks the (project, labeler) index for the next labeler id after the last
    one, instead of reading every annotation's (200,000 on the bench's big project).
    """
    table = Annotation._meta.db_table
    sql = (
        f"WITH RECURSIVE labeler(id) AS ("
        f"SELECT min(labeler_id) FROM {table} WHERE project_id = %s "
        f"UNION ALL SELECT (SELECT min(labeler_id) FROM {table} WHERE project_id = %s AND labeler_id > labeler.id) "
        f"FROM labeler WHERE labeler.id IS NOT NULL) "
        f"SELECT id FROM labeler WHERE id IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project_id, project_id])
        return [labeler for (labeler,) in cursor.fetchall()]


class _Unknown:
    """Fills in the fields of a labeler that export_sql.raw_sql's maps lacked (its markers around the labeler id)."""

    def __init__(self, competence: dict[int, float], *, binary: bool):
        self.competence, self.binary = competence, binary
        pattern = f"{UNKNOWN_PSEUDONYM}([0-9]+){UNKNOWN_PSEUDONYM}|{UNKNOWN_COMPETENCE}([0-9]+){UNKNOWN_COMPETENCE}"
        self.pattern = re.compile(pattern.encode() if binary else pattern)
        self.marker = (UNKNOWN_PSEUDONYM.encode() if binary else UNKNOWN_PSEUDONYM)
        self.empty = b"" if binary else ""

    def filled(self, line):
        return self.pattern.sub(self._field, line)

    def _field(self, match):
        pseudonym, competence = match.groups()
        if pseudonym is not None:
            text = _string(labeler_pseudonym(int(pseudonym)))
        else:
            text = _value(self.competence.get(int(competence)))
        return text.encode() if self.binary else text


def _raw_portable(query, *, competence: dict[int, float], batch_rows: int) -> Iterator[list[str]]:
    """The raw lines made in Python from the ORM's values (SQLite): what export_sql.raw_sql makes on PostgreSQL."""
    as_json = json_text()
    labelers: dict[tuple, str] = {}
    for batch in row_batches(query, batch_rows=batch_rows):
        shown = _shown({row[6] for row in batch if row[7] == "comparison" and row[8] == "comparison"})
        lines = []
        for (pk, labeler_id, external_source, review_state, review_pending, is_correction, task_id, task_kind, kind, external_id,
             messages, created_at, time_spent_ms, lease_expired, text, ranking, strength, flags, all_bad, rationale,
             edit_id, edited_from_id, edit_text, reason) in batch:
            who = labelers.get((labeler_id, external_source))
            if who is None:
                who = labelers[(labeler_id, external_source)] = _who(labeler_id, external_source, competence)
            state = review_state_name(
                is_correction=is_correction, review_state=review_state, review_pending=review_pending
            )
            head = (
                f'{{"annotation_id": {pk}, {who}, "review_state": "{state}", "task_id": {task_id}, '
                f'"task_kind": {_string(task_kind)}, "kind": {_string(kind)}, "prompt_id": {_string(external_id)}, '
                f'"messages": {as_json(messages)}, "created_at": "{created_at.isoformat()}", '
                f'"time_spent_ms": {time_spent_ms}, "lease_expired": {_BOOL[lease_expired]}'
            )
            if kind == "demonstration":
                lines.append(f'{head}, "text": {_string(text)}}}\n')
            elif kind == "comparison":
                edit = (
                    f'{{"response_id": {_value(edited_from_id)}, "text": {_string(edit_text)}}}'
                    if edit_id is not None else "null"
                )
                lines.append(
                    f'{head}, "responses": {shown.get(task_id, "[]")}, "ranking": {as_json(ranking)}, '
                    f'"strength": {_string(strength)}, "flags": {as_json(flags)}, "all_bad": {_BOOL[all_bad]}, '
                    f'"rationale": {_string(rationale)}, "edit": {edit}}}\n'
                )
            else:
                lines.append(f'{head}, "reason": {_string(reason)}}}\n')
        yield lines
