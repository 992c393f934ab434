"""The fast export writers (annotation/export_fast.py) give the reference writers' output byte for byte.

The fixture has every kind of row an export meets: demonstrations whose texts hold quotes,
backslashes, control characters, non-ASCII and emoji; a system turn; pairs with each strength;
rankings of three and four with ties; all bad; a flagged one; an edit; a skip; a response deleted
since; a rejected one, a correction, an accepted one and one waiting in the review queue; a gold
task; a quality report with competences; and another project's work that must not show.
"""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from annotation import export_fast, exporters
from annotation.export_fast import fast_batches
from annotation.export_filters import ExportFilters
from annotation.export_reference import reference_lines
from annotation.export_scope import export_scope
from annotation.models import Annotation, AnnotationFlag, Membership, Response, ReviewItem, Task
from annotation.reliability import store
from tests.factories import PromptFactory, ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db

TRICKY = 'Line one\nline "two"\ttab \\ back\x01\x1f é ü 中文 😀 \u2028 </script> {"json": [1]}'
FILTERS = [
    {},
    {"exclude_gold": True},
    {"reviewed_only": True},
    {"exclude_flagged": True},
    {"min_competence": 0.5},
    {"labeler": "ann"},
    {"since": "2000-01-01", "until": "2999-12-31"},
    {"exclude_gold": True, "exclude_flagged": True, "min_competence": 0.5},
    {"external": "exclude"},
    {"external": "only"},
]


def shown(task) -> list[int]:
    return list(task.task_responses.order_by("position").values_list("response_id", flat=True))


def annotate(task, labeler, kind, **fields) -> Annotation:
    return Annotation.objects.create(
        task=task, project=task.project, labeler=labeler, kind=kind, client_id=uuid.uuid4(), **fields
    )


@pytest.fixture
def varied():
    project = ProjectFactory(overlap=3)
    ann, bob, carol = (member(project, username=name) for name in ("ann", "bob", "carol"))
    rita = member(project, role=Membership.Role.REVIEWER, username="rita")
    chat = [{"role": "system", "content": "Be brief \u00e9."}, {"role": "user", "content": TRICKY}]
    for i, labeler in enumerate((ann, bob, carol)):
        demo = TaskFactory(project=project, prompt=PromptFactory(project=project, messages=chat, external_id=f"d{i}"))
        state = Annotation.ReviewState.ACCEPTED if labeler is bob else ""
        annotate(demo, labeler, Annotation.Kind.DEMONSTRATION, text=f"{TRICKY} {i}", time_spent_ms=1234 + i,
                 review_state=state)
    pair = comparison_task(project=project, texts=(TRICKY, "Plain."))
    a, b = shown(pair)
    for labeler, strength in zip((ann, bob, carol), ("much_better", "slightly_better", "")):
        annotate(pair, labeler, Annotation.Kind.COMPARISON, ranking=[[a], [b]], strength=strength,
                 flags={str(b): ["factual_error", "harmful"]}, rationale="Because \u201cquoted\u201d.")
    triple = comparison_task(project=project, texts=("x", "y", "z"))
    x, y, z = shown(triple)
    annotate(triple, ann, Annotation.Kind.COMPARISON, ranking=[[z], [x, y]])
    annotate(triple, bob, Annotation.Kind.COMPARISON, ranking=[[x, y, z]])
    flagged = annotate(triple, carol, Annotation.Kind.COMPARISON, ranking=[[y], [z], [x]], all_bad=True)
    AnnotationFlag.objects.create(annotation=flagged, project=project, reason=AnnotationFlag.Reason.FAST)
    four = comparison_task(project=project, texts=("p", "q", "r", "s"))
    p, q, r, s = shown(four)
    edit = Response.objects.create(prompt=four.prompt, text=f"Edited {TRICKY}", source=Response.Source.HUMAN,
                                   edited_from_id=p)
    annotate(four, ann, Annotation.Kind.COMPARISON, ranking=[[p], [q, r], [s]], edited_response=edit)
    accepted = annotate(four, bob, Annotation.Kind.COMPARISON, ranking=[[s], [r], [q], [p]],
                        review_state=Annotation.ReviewState.ACCEPTED)
    pending = annotate(four, carol, Annotation.Kind.SKIP, reason=f"Unclear: {TRICKY}")
    ReviewItem.objects.create(project=project, annotation=pending, task=four, labeler=carol, reason="sample")
    ReviewItem.objects.create(project=project, annotation=accepted, task=four, labeler=bob, reason="sample",
                              status=ReviewItem.Status.DECIDED, verdict=Annotation.ReviewState.ACCEPTED, reviewer=rita)
    gone = comparison_task(project=project, texts=("kept", "deleted later", "third"))
    k, d, t = shown(gone)
    annotate(gone, ann, Annotation.Kind.COMPARISON, ranking=[[k], [d], [t]], strength="better")
    rejected = annotate(gone, bob, Annotation.Kind.COMPARISON, ranking=[[t], [k]],
                        review_state=Annotation.ReviewState.CORRECTED)
    correction = annotate(gone, rita, Annotation.Kind.COMPARISON, ranking=[[k], [t]])
    ReviewItem.objects.create(project=project, annotation=rejected, task=gone, labeler=bob, reason="sample",
                              status=ReviewItem.Status.DECIDED, verdict=Annotation.ReviewState.CORRECTED,
                              reviewer=rita, correction=correction)
    annotate(gone, carol, Annotation.Kind.COMPARISON, ranking=[[d], [k]], strength="much_better")  # a pair, half gone
    annotate(gone, member(project, username="dora"), Annotation.Kind.COMPARISON, ranking=[[t], [k]], strength="tie")
    Response.objects.filter(pk=d).delete()
    gold = gold_comparison_task(project=project, texts=("G1", "G2"), best=0)
    g1, g2 = shown(gold)
    annotate(gold, ann, Annotation.Kind.COMPARISON, ranking=[[g1], [g2]], strength="better", lease_expired=True)
    imported = comparison_task(project=project, texts=("Imported \u00e9 better.", "Imported worse."))
    i1, i2 = shown(imported)
    annotate(imported, None, Annotation.Kind.COMPARISON, ranking=[[i1], [i2]], strength="better",
             external_source="hh-rlhf \u201cset\u201d")
    annotate(imported, None, Annotation.Kind.COMPARISON, ranking=[[i2], [i1]], external_source="hh-rlhf",
             external_hidden=True)  # hidden by its import: in no export
    answered = TaskFactory(project=project, prompt=PromptFactory(project=project, messages=chat, external_id="oa1"))
    annotate(answered, None, Annotation.Kind.DEMONSTRATION, text="An imported reply.", external_source="oasst2")
    odd = comparison_task(project=project, texts=("Odd first.", "Odd second."))
    o1, o2 = shown(odd)  # a pair whose id is stored as a float: not the plain pair PostgreSQL writes whole
    annotate(odd, bob, Annotation.Kind.COMPARISON, ranking=[[float(o1)], [o2]], strength="much_better")
    # Timestamps isoformat() writes without microseconds, and with leading zeros in them.
    whole, small = Annotation.objects.filter(project=project).order_by("id")[:2]
    Annotation.objects.filter(pk=whole.pk).update(created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    Annotation.objects.filter(pk=small.pk).update(created_at=datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=UTC))
    other = ProjectFactory()
    stranger = member(other, username="stranger")
    annotate(TaskFactory(project=other), stranger, Annotation.Kind.DEMONSTRATION, text="Elsewhere.")
    store.quality_report_set(report={
        "version": store.REPORT_VERSION, "project_id": project.pk, "data_as_of": "2026-01-01T00:00:00+00:00",
        "labelers": [{"labeler_id": ann.pk, "dawid_skene": 0.95}, {"labeler_id": carol.pk, "dawid_skene": 0.3}],
    })
    return project


@pytest.mark.parametrize("fmt", exporters.FORMATS)
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_the_fast_writers_give_the_reference_bytes(varied, fmt, filters):
    chosen = ExportFilters.from_mapping(filters)
    scope = export_scope(project=varied, fmt=fmt, filters=chosen)
    expected = "".join(reference_lines(project=varied, fmt=fmt, scope=scope))
    assert expected  # every setting keeps some lines of every format here
    assert "".join(exporters.export_lines(project=varied, fmt=fmt, filters=chosen)) == expected
    assert b"".join(exporters.export_blocks(project=varied, fmt=fmt, filters=chosen)) == expected.encode()
    small = fast_batches(project=varied, fmt=fmt, scope=scope, batch_rows=2)  # batch edges inside the fixture
    assert "".join(line for batch in small for line in batch) == expected
    small = fast_batches(project=varied, fmt=fmt, scope=scope, batch_rows=2, binary=True)
    assert b"".join(line for batch in small for line in batch) == expected.encode()


def test_the_fixture_reaches_every_kind_of_row(varied):
    raw = "".join(exporters.export_lines(project=varied, fmt="raw"))
    for needle in ('"review_state": "pending"', '"review_state": "accepted"', '"review_state": "correction"',
                   '"kind": "skip"', '"all_bad": true', '"lease_expired": true', '"edit": {"response_id"',
                   '"labeler_competence": 0.95', '"labeler_competence": null', "😀", "\\u0001",
                   '"created_at": "2026-01-02T03:04:05+00:00"', '"created_at": "2026-01-02T03:04:05.001000+00:00"'):
        assert needle in raw
    assert "Elsewhere" not in raw
    assert Task.objects.filter(project=varied, is_gold=True).exists()


def test_an_export_stopped_early_inside_a_transaction_leaves_it_usable(varied):
    # The test runs inside a transaction, as a run's snapshot freezing does.
    assert connection.in_atomic_block
    lines = exporters.export_lines(project=varied, fmt="raw")
    assert next(lines).startswith('{"annotation_id": ')
    lines.close()
    assert connection.in_atomic_block and not connection.needs_rollback
    assert Annotation.objects.filter(project=varied).exists()


@pytest.mark.parametrize("known", ["none", "some"])
def test_a_labeler_missing_from_the_querys_maps_is_filled_in_by_python(varied, known, monkeypatch):
    # PostgreSQL writes each raw line's labeler fields from maps read before the export's query; a labeler who
    # labeled in between is marked there and filled in here (export_fast._Unknown).
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's raw lines are all made in Python")
    real = export_fast._project_labelers
    monkeypatch.setattr(export_fast, "_project_labelers", lambda pk: [] if known == "none" else real(pk)[:1])
    filled = []
    real_filled = export_fast._Unknown.filled
    monkeypatch.setattr(export_fast._Unknown, "filled", lambda self, line: filled.append(line) or real_filled(self, line))
    scope = export_scope(project=varied, fmt="raw", filters=None)
    expected = "".join(reference_lines(project=varied, fmt="raw", scope=scope))
    assert "".join(exporters.export_lines(project=varied, fmt="raw")) == expected
    assert b"".join(exporters.export_blocks(project=varied, fmt="raw")) == expected.encode()
    assert any(isinstance(line, bytes) for line in filled) and any(isinstance(line, str) for line in filled)


def test_a_value_outside_the_choices_is_still_written_as_json(varied):
    # PostgreSQL writes the usual kinds, strengths and an empty rationale as constants (export_sql._choice);
    # any other stored value, even one no form accepts, must still come out escaped as the reference writes it.
    odd = Annotation.objects.filter(project=varied, kind=Annotation.Kind.COMPARISON, strength="tie").get()
    Annotation.objects.filter(pk=odd.pk).update(strength='odd "x"\x01\\')
    scope = export_scope(project=varied, fmt="raw", filters=None)
    expected = "".join(reference_lines(project=varied, fmt="raw", scope=scope))
    assert '"strength": "odd \\"x\\"\\u0001\\\\"' in expected
    assert "".join(exporters.export_lines(project=varied, fmt="raw")) == expected
    assert b"".join(exporters.export_blocks(project=varied, fmt="raw")) == expected.encode()
