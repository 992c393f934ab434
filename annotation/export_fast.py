"""The sft, preference and raw exports at database speed: a batch of lines per batch of rows.

Each writer reads one values_list() query (export_scope.kept_annotations: the filters, on
annotation.project_id, in id order) through export_stream.row_batches. Lines are assembled as
strings in the order json.dumps would write them: string values go through json's own C encoder
(the one json.dumps uses with ensure_ascii=False) and JSON columns are passed through as the JSON
text PostgreSQL sends. On PostgreSQL the texts of a plain pair (_pair_texts) and a comparison's
shown responses (_shown_in_row) are looked up and encoded in the row itself; other rows' texts
come in one query per batch. The output is the reference writers' (export_reference.py), byte
for byte; tests check it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring as _string

from django.db.models import Q, TextField, Value
from django.db.models.expressions import RawSQL

from .export_pairs import RANK_GAP_MARGIN, annotation_pairs
from .export_reference import review_flags, review_state_name
from .export_scope import ExportScope, kept_annotations, labeler_pseudonym, sft_rows
from .export_stream import BATCH_ROWS, json_text, raw_rows, row_batches, rows_by_ids
from .models import Annotation, Project, Response, Task, TaskResponse
from .validation import STRENGTH_MARGIN

_BOOL = {True: "true", False: "false"}
_ASSISTANT = '{"role": "assistant", "content": '
_value = json.JSONEncoder(ensure_ascii=False).encode  # a value that is not a string: a number, null


_TEXTS = f"SELECT id, text FROM {Response._meta.db_table} WHERE id = ANY(%s)"


def fast_batches(
    *, project: Project, fmt: str, scope: ExportScope, batch_rows: int = BATCH_ROWS
) -> Iterator[list[str]]:
    """Lists of export lines, one list per batch of annotation rows read (empty lists are skipped)."""
    writer = {"sft": _sft, "preference": _preference, "raw": _raw}[fmt]
    return writer(project=project, scope=scope, batch_rows=batch_rows)


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


def _pair_texts() -> dict:
    """The chosen and rejected texts, as JSON strings, of a plain pair ranking: made by PostgreSQL in the row.

    A ranking whose JSON text is "[[a], [b]]" (two groups of one id each, matched on the text),
    not all bad and without an edit, is one pair (annotation_pairs): PostgreSQL
    looks both texts up in the row's own plan and encodes them (to_json escapes as json.dumps
    does), which spares the batch lookup and the encoding here. Null for any other row, or for a
    response deleted since; those rows take the general way. Elsewhere (SQLite): always null.
    """
    if not raw_rows():
        return {"chosen": Value(None, output_field=TextField()), "rejected": Value(None, output_field=TextField())}
    a = f'"{Annotation._meta.db_table}"'
    simple = (
        f"NOT {a}.all_bad AND {a}.edited_response_id IS NULL "
        f"AND {a}.ranking::text ~ '^\\[\\[[0-9]{{1,18}}\\], \\[[0-9]{{1,18}}\\]\\]$'"
    )
    text = (
        f"CASE WHEN {simple} THEN (SELECT to_json(r.text)::text FROM {Response._meta.db_table} r "
        f"WHERE r.id = ({a}.ranking -> GROUP ->> 0)::bigint) END"
    )
    return {"chosen": RawSQL(text.replace("GROUP", "0"), []), "rejected": RawSQL(text.replace("GROUP", "1"), [])}


def _preference(*, project: Project, scope: ExportScope, batch_rows: int) -> Iterator[list[str]]:
    as_json = json_text()
    raw = raw_rows()
    margins = {strength: repr(float(margin)) for strength, margin in STRENGTH_MARGIN.items()}
    plain_margin = repr(float(RANK_GAP_MARGIN))  # a pair without a known strength: one rank apart
    query = (
        kept_annotations(project=project, scope=scope, where=Q(kind=Annotation.Kind.COMPARISON))
        .annotate(**_pair_texts())
        .values_list("ranking", "strength", "all_bad", "edited_response_id", "edited_response__edited_from_id",
                     "task__prompt__messages", "chosen", "rejected")
    )
    for batch in row_batches(query, batch_rows=batch_rows):
        made, ids = [], set()  # made: a ready line, or (messages, pairs) waiting for the batch's texts
        for ranking, strength, all_bad, edit, original, messages, chosen, rejected in batch:
            if chosen is not None and rejected is not None:
                made.append(
                    f'{{"prompt": {as_json(messages)}, "chosen": [{_ASSISTANT}{chosen}}}], "rejected": [{_ASSISTANT}'
                    f'{rejected}}}], "margin": {margins.get(strength, plain_margin)}}}\n'
                )
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


_RAW_COLUMNS = (
    "id", "labeler_id", "external_source", "review_state", "review_pending", "is_correction", "task_id", "task__kind", "kind",
    "task__prompt__external_id", "task__prompt__messages", "created_at", "time_spent_ms", "lease_expired",
    "text", "ranking", "strength", "flags", "all_bad", "rationale", "edited_response_id",
    "edited_response__edited_from_id", "edited_response__text", "reason", "shown",
)


def _shown_in_row() -> dict:
    """A comparison's responses in display order as the raw export's JSON list, made by PostgreSQL in the row.

    The same list _shown builds ([{"id", "text"}, ...], "[]" when none), for comparison
    annotations on comparison tasks; null for other rows and elsewhere (SQLite), where _shown runs.
    """
    if not raw_rows():
        return {"shown": Value(None, output_field=TextField())}
    a, t = f'"{Annotation._meta.db_table}"', f'"{Task._meta.db_table}"'
    return {"shown": RawSQL(
        f"CASE WHEN {a}.kind = 'comparison' AND {t}.kind = 'comparison' THEN ("
        f"SELECT '[' || COALESCE(string_agg('{{\"id\": ' || r.id || ', \"text\": ' || to_json(r.text)::text || '}}', "
        f"', ' ORDER BY tr.position), '') || ']' "
        f"FROM {TaskResponse._meta.db_table} tr JOIN {Response._meta.db_table} r ON r.id = tr.response_id "
        f"WHERE tr.task_id = {a}.task_id) END",
        [],
    )}


def _raw(*, project: Project, scope: ExportScope, batch_rows: int) -> Iterator[list[str]]:
    as_json = json_text()
    competence = scope.competence or {}
    labelers: dict[tuple, str] = {}  # the labeler's three fields, as JSON, by (labeler id, external source)
    query = (
        kept_annotations(project=project, scope=scope, where=Q(kind__in=Annotation.Kind.values))
        .annotate(**review_flags(), **_shown_in_row())
        .values_list(*_RAW_COLUMNS)
    )
    in_row = raw_rows()
    for batch in row_batches(query, batch_rows=batch_rows):
        shown = {} if in_row else _shown({row[5] for row in batch if row[6] == "comparison"})
        lines = []
        for (pk, labeler_id, external_source, review_state, review_pending, is_correction, task_id, task_kind, kind, external_id,
             messages, created_at, time_spent_ms, lease_expired, text, ranking, strength, flags, all_bad, rationale,
             edit_id, edited_from_id, edit_text, reason, shown_json) in batch:
            who = labelers.get((labeler_id, external_source))
            if who is None:  # an imported label has a source and no labeler
                who = labelers[(labeler_id, external_source)] = (
                    f'"labeler": {_string(labeler_pseudonym(labeler_id)) if labeler_id is not None else "null"}, '
                    f'"external_source": {_string(external_source) if external_source else "null"}, '
                    f'"labeler_competence": {_value(competence.get(labeler_id))}'
                )
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
                    f'{head}, "responses": {shown_json or shown.get(task_id, "[]")}, "ranking": {as_json(ranking)}, '
                    f'"strength": {_string(strength)}, "flags": {as_json(flags)}, "all_bad": {_BOOL[all_bad]}, '
                    f'"rationale": {_string(rationale)}, "edit": {edit}}}\n'
                )
            else:
                lines.append(f'{head}, "reason": {_string(reason)}}}\n')
        yield lines
