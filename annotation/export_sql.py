"""Export lines built by PostgreSQL: the row is already the line's text, and Python only joins them.

Each function takes the compiled SQL of an export's values_list() query (the filters, in id
order: export_scope.kept_annotations) and wraps it: the outer SELECT reads the inner one's
columns as `k` and concatenates the line from them (the id comes first, and the rows in id order:
export_halves.py splits and merges on it), so the filters stay the ORM's and the line
is written once, here. Python then handles no column per row, and no value is converted twice.

Why the text matches the reference writers' json.dumps(..., ensure_ascii=False) byte for byte:
- a string goes through to_json(text)::text, which escapes `"`, `\\`, \\b \\f \\n \\r \\t and every
  other control character as \\u00XX with lowercase hex, and leaves the rest (non-ASCII, U+2028)
  as it is: what json's own encoder does;
- a jsonb column's text is PostgreSQL's: `", "` and `": "` separators and keys in jsonb's order,
  which is the order the reference sees too (it parses that same text);
- numbers and booleans are integers and fixed words, and a margin is Python's own repr(float),
  passed in as a parameter.
Tests compare both for every format and filter (tests/annotation/test_export_fast.py).
"""

from __future__ import annotations

import json

from .export_pairs import STRENGTH_MARGIN
from .models import Annotation, Response, ShownResponses, Task, TaskResponse

_ASSISTANT = '{"role": "assistant", "content": '
_RESPONSES = Response._meta.db_table
_SHOWN = TaskResponse._meta.db_table
_SHOWN_STORED = ShownResponses._meta.db_table

# The preference export's inner columns (a values_list over Annotation, in this order), read by fast_batches too.
PREFERENCE_COLUMNS = (
    "id", "ranking", "strength", "all_bad", "edited_response_id", "export_original", "export_messages",
)


def _string(expr: str) -> str:
    """SQL for a text column's value as a JSON string."""
    return f"to_json({expr})::text"


def _literal(text: str) -> str:
    """A constant piece of a line as an SQL string literal (no % in it: the SQL goes through the driver)."""
    assert "%" not in text
    return "'" + text.replace("'", "''") + "'"


def _one_id(group: int) -> str:
    """True when the ranking's group `group` holds exactly one integer id that fits a bigint.

    A jsonb number prints without exponent, so no "." and at most 18 characters mean an integer
    the cast below takes. The `->` operators give null (never an error) on any other shape.
    """
    text = f"k.ranking -> {group} ->> 0"
    return (
        f"jsonb_typeof(k.ranking -> {group} -> 0) = 'number' AND strpos({text}, '.') = 0 AND length({text}) <= 18 "
        f"AND k.ranking -> {group} -> 1 IS NULL"
    )


def _text_of(group: int) -> str:
    """The JSON string of the text of the ranking group's one response (null when it was deleted)."""
    return f"(SELECT {_string('r.text')} FROM {_RESPONSES} r WHERE r.id = (k.ranking -> {group} ->> 0)::bigint)"


def preference_sql(inner: str, params: list, *, plain_margin: str) -> tuple[str, list]:
    """The preference query: the id, then a plain pair's whole line, or null where Python makes the row's lines.

    A plain pair is a ranking of two groups of one id each, not all bad and without an edit: one
    line (annotation_pairs), whose two texts PostgreSQL looks up in the row's own plan. Its
    margin is the strength's, or `plain_margin` (one rank apart) for any other strength. Any
    other ranking, or a pair whose response was deleted since, has a null line and goes the
    general way in Python, with the columns PREFERENCE_COLUMNS names after the line.

    The shape is checked with jsonb's own operators: matching the ranking's text against a
    pattern cost 1 s of PostgreSQL's time per 200,000 rows, the operators a tenth of that.

    The other columns are null where the line is made: most rows' prompt would otherwise cross
    twice, in the line and as its own column, and the driver would make a string of each column
    of every row. The line is made once per row in a LATERAL subquery that OFFSET 0 keeps from
    being folded into the outer SELECT (folded, each CASE on it would make the line again); the
    rows still come in the annotations' id order, with no sort before the first one.
    """
    plain = f"NOT k.all_bad AND k.edited_response_id IS NULL AND k.ranking -> 2 IS NULL AND {_one_id(0)} AND {_one_id(1)}"
    margins = " ".join("WHEN %s THEN %s" for _ in STRENGTH_MARGIN)
    margin_params = [value for strength, margin in STRENGTH_MARGIN.items() for value in (str(strength), repr(float(margin)))]
    line = (
        f"CASE WHEN {plain} THEN "
        f"""'{{"prompt": ' || k.export_messages::text || {_literal(', "chosen": [' + _ASSISTANT)} || {_text_of(0)} """
        f"""|| {_literal('}], "rejected": [' + _ASSISTANT)} || {_text_of(1)} || '}}], "margin": ' """
        f"|| CASE k.strength {margins} ELSE %s END || E'}}\\n' END"
    )
    columns = ", ".join(f"CASE WHEN made.line IS NULL THEN k.{name} END" for name in PREFERENCE_COLUMNS[1:])
    sql = (
        f"SELECT k.id, made.line, {columns} FROM ({inner}) k "
        f"CROSS JOIN LATERAL (SELECT {line} AS line OFFSET 0) made ORDER BY k.id"
    )
    return sql, [*params, *margin_params, plain_margin]


# The raw export's inner columns (a values_list over Annotation with review_flags() annotated), in this order.
RAW_COLUMNS = (
    "id", "labeler_id", "external_source", "review_state", "review_pending", "is_correction", "task_id",
    "export_task_kind", "kind", "export_external_id", "export_messages", "created_at", "time_spent_ms",
    "lease_expired", "text", "ranking", "strength", "flags", "all_bad", "rationale", "edited_response_id",
    "export_original", "export_edit_text", "reason",
)


def _bool(expr: str) -> str:
    return f"CASE WHEN {expr} THEN 'true' ELSE 'false' END"


def _iso(expr: str) -> str:
    """A timestamptz as Python's datetime.isoformat() writes an aware UTC one: microseconds only when not zero.

    One to_char with the microseconds, whose zero fraction is then cut: ".000000+" can only be that
    fraction followed by the offset. (The offset is quoted: a literal in the pattern, not a field.)
    """
    return f"""replace(to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), '.000000+', '+')"""


def _choice(expr: str, values) -> str:
    """SQL for a text column's value as a JSON string, its usual values' strings written out as constants.

    to_json costs about as much per call for a 10-character word as a 200-character text: the
    kinds, the strength and an empty rationale are most rows' values, and a CASE on them is
    far cheaper. Any other value (or a null) still goes through to_json. The constants are
    json.dumps's (ensure_ascii=False), the reference writers' encoder.
    """
    whens = " ".join(f"WHEN {_literal(value)} THEN {_literal(json.dumps(value, ensure_ascii=False))}" for value in values)
    return f"CASE {expr} {whens} ELSE {_string(expr)} END"


# A raw line's labeler fields for a labeler the query's maps do not hold (one who first labeled after the
# maps were read): a marker that no JSON text holds (control characters are escaped there), the id between
# two of them, which Python replaces (export_fast._raw).
UNKNOWN_PSEUDONYM = "\x01"
UNKNOWN_COMPETENCE = "\x02"


def _labeler_field(labeler_map: str, marker: str) -> str:
    """A labeler's field from a JSON object parameter of its JSON text by labeler id: null without a labeler."""
    marked = f"E'\\x{ord(marker):02x}' || k.labeler_id || E'\\x{ord(marker):02x}'"
    return (
        f"CASE WHEN k.labeler_id IS NULL THEN 'null' ELSE COALESCE({labeler_map} ->> k.labeler_id::text, {marked}) END"
    )


def raw_sql(inner: str, params: list, *, pseudonyms: str, competences: str) -> tuple[str, list]:
    """The raw query: (id, the whole line).

    The labeler's pseudonym (an HMAC keyed by the secret key, which PostgreSQL never sees) and
    competence are Python's: `pseudonyms` and `competences` are JSON objects of each labeler's
    field as JSON text, by labeler id, for every labeler of the project when the export began
    (export_fast.labeler_fields). A labeler they lack (one who labeled since) gets a marker
    (UNKNOWN_PSEUDONYM, UNKNOWN_COMPETENCE around the id) that Python replaces. So Python only
    passes the lines on: for a 700-byte line, joining three strings per row cost the web process
    more than looking up its labeler costs PostgreSQL.

    The review state is named as export_reference.review_state_name names it; the shown responses
    are the task's, in display order, for a comparison on a comparison task (else an empty list).

    The shown responses are the task's list as its links were made (models.ShownResponses, one
    primary-key probe), which cost 40% of the query's time when built per annotation. A task
    without one (made before it existed, or whose links or texts changed since) gets it built:
    the task's display positions, then each response's text by primary key. The positions come
    from the unique (task_id, position) index alone, which INCLUDEs response_id on PostgreSQL
    (migration 0018); already in position order, they are collected into an ARRAY and joined,
    which took 0.4 s less per 200,000 rows than string_agg(... ORDER BY position).
    """
    kinds = Annotation.Kind
    strengths = [*Annotation.Strength.values, ""]
    review_state = (
        "CASE WHEN k.is_correction THEN 'correction' WHEN k.review_state = %s THEN 'accepted' "
        "WHEN k.review_pending THEN 'pending' ELSE 'unreviewed' END"
    )
    shown = (
        f"COALESCE((SELECT s.json FROM {_SHOWN_STORED} s WHERE s.task_id = k.task_id), "
        "'[' || array_to_string(ARRAY(SELECT '{\"id\": ' || r.id || ', \"text\": ' || "
        f"{_string('r.text')} || '}}' FROM {_SHOWN} tr JOIN {_RESPONSES} r ON r.id = tr.response_id "
        "WHERE tr.task_id = k.task_id ORDER BY tr.position), ', ') || ']')"
    )
    edit = (
        "CASE WHEN k.edited_response_id IS NULL THEN 'null' ELSE "
        "'{\"response_id\": ' || COALESCE(k.export_original::text, 'null') || ', \"text\": ' || "
        f"{_string('k.export_edit_text')} || '}}' END"
    )
    comparison = (
        "', \"responses\": ' || CASE WHEN k.export_task_kind = %s THEN " + shown + " ELSE '[]' END || "
        "', \"ranking\": ' || k.ranking::text || ', \"strength\": ' || " + _choice("k.strength", strengths) + " || "
        "', \"flags\": ' || k.flags::text || ', \"all_bad\": ' || " + _bool("k.all_bad") + " || "
        "', \"rationale\": ' || " + _choice("k.rationale", [""]) + " || ', \"edit\": ' || " + edit
    )
    tail = (
        "', \"review_state\": \"' || " + review_state + " || '\", \"task_id\": ' || k.task_id || "
        "', \"task_kind\": ' || " + _choice("k.export_task_kind", Task.Kind.values) + " || "
        "', \"kind\": ' || " + _choice("k.kind", kinds.values) + " || "
        "', \"prompt_id\": ' || " + _string("k.export_external_id") + " || "
        "', \"messages\": ' || k.export_messages::text || ', \"created_at\": \"' || " + _iso("k.created_at") + " || "
        "'\", \"time_spent_ms\": ' || k.time_spent_ms || ', \"lease_expired\": ' || " + _bool("k.lease_expired") + " || "
        "CASE k.kind WHEN %s THEN ', \"text\": ' || " + _string("k.text") + " WHEN %s THEN " + comparison + " "
        "ELSE ', \"reason\": ' || " + _string("k.reason") + " END || E'}\\n'"
    )
    who = (
        "'\"labeler\": ' || " + _labeler_field("%s::jsonb", UNKNOWN_PSEUDONYM) + " || "
        "', \"external_source\": ' || CASE WHEN COALESCE(k.external_source, '') = '' THEN 'null' ELSE "
        + _string("k.external_source") + " END || "
        "', \"labeler_competence\": ' || " + _labeler_field("%s::jsonb", UNKNOWN_COMPETENCE)
    )
    sql = (
        "SELECT k.id, '{\"annotation_id\": ' || k.id || ', ' || " + who + " || " + tail + " "
        f"FROM ({inner}) k ORDER BY k.id"
    )
    tail_params = [Annotation.ReviewState.ACCEPTED.value, kinds.DEMONSTRATION.value, kinds.COMPARISON.value,
                   Task.Kind.COMPARISON.value]
    return sql, [pseudonyms, competences, *tail_params, *params]
