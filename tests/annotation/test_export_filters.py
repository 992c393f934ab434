"""Export filters (annotation/export_filters.py) and the consensus export, on a small project with known answers.

The fixture, comparisons of two responses each ("A<n>" shown first, "B<n>" second):

    task   kind   ann  carol(bad)   notes
    t1     pair   A>B  A>B  B>A     ann's is accepted in review, carol's is flagged (fast)
    t2     pair   A>B  B>A  B>A     bob's is flagged but accepted in review
    t3     pair   A>B  A>B  --      carol's corrected by the reviewer: the reviewer's A>B counts
    gold   pair   A>B  A>B  B>A     gold answer A; carol's was rejected earlier and is gone
    t5     pair   tie  tie  --      ties give no pair, unless the export asks for them (two each)

Competence in the cached report: ann 0.95, bob 0.9, carol 0.3; the reviewer has no figure.
"""

import json
import uuid
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from annotation import consensus, exporters
from annotation.errors import InvalidInput
from annotation.export_filters import ExportFilters
from annotation.models import Annotation, AnnotationFlag, Membership, ReviewItem
from annotation.reliability import store
from tests.factories import ProjectFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db


def ids(task) -> list[int]:
    return list(task.task_responses.order_by("position").values_list("response_id", flat=True))


def judge(task, labeler, order: str, **fields) -> Annotation:
    """order: "AB" (first shown better), "BA", or "=" (a tie)."""
    a, b = ids(task)
    ranking = {"AB": [[a], [b]], "BA": [[b], [a]], "=": [[a, b]]}[order]
    strength = "" if order == "=" else fields.pop("strength", Annotation.Strength.BETTER)
    return Annotation.objects.create(
        task=task, project=task.project, labeler=labeler, kind=Annotation.Kind.COMPARISON,
        ranking=ranking, strength=strength, client_id=uuid.uuid4(), **fields,
    )


def review(annotation, reviewer, verdict, correction=None):
    annotation.review_state = verdict
    annotation.save(update_fields=["review_state"])
    return ReviewItem.objects.create(
        project=annotation.project, annotation=annotation, task=annotation.task, labeler=annotation.labeler,
        reason="sample", status=ReviewItem.Status.DECIDED, verdict=verdict, reviewer=reviewer, correction=correction,
        comment="Wrong." if verdict == Annotation.ReviewState.REJECTED else "",
    )


def flag(annotation):
    AnnotationFlag.objects.create(annotation=annotation, project=annotation.project, reason=AnnotationFlag.Reason.FAST)


@pytest.fixture
def world():
    project = ProjectFactory(overlap=3)
    ann, bob, carol = (member(project, username=name) for name in ("ann", "bob", "carol"))
    rita = member(project, role=Membership.Role.REVIEWER, username="rita")
    tasks = {
        name: comparison_task(project=project, texts=(f"A{n}", f"B{n}"))
        for n, name in enumerate(["t1", "t2", "t3"], 1)
    }
    tasks["gold"] = gold_comparison_task(project=project, texts=("A4", "B4"), best=0)
    tasks["t5"] = comparison_task(project=project, texts=("A5", "B5"))
    made = {}
    for name, orders in {"t1": "AB AB BA", "t2": "AB BA BA", "t3": "AB AB", "gold": "AB AB BA", "t5": "= ="}.items():
        for labeler, order in zip((ann, bob, carol), orders.split()):
            made[name, labeler.username] = judge(tasks[name], labeler, order)
    review(made["t1", "ann"], rita, Annotation.ReviewState.ACCEPTED)
    flag(made["t1", "carol"])
    flag(made["t2", "bob"])
    review(made["t2", "bob"], rita, Annotation.ReviewState.ACCEPTED)
    correction = judge(tasks["t3"], rita, "AB")
    review(made["t3", "bob"], rita, Annotation.ReviewState.CORRECTED, correction=correction)
    review(made["gold", "carol"], rita, Annotation.ReviewState.REJECTED)
    store.quality_report_set(report={
        "version": store.REPORT_VERSION, "project_id": project.pk, "data_as_of": "2026-01-01T00:00:00+00:00",
        "labelers": [
            {"labeler_id": ann.pk, "dawid_skene": 0.95}, {"labeler_id": bob.pk, "dawid_skene": 0.9},
            {"labeler_id": carol.pk, "dawid_skene": 0.3},
        ],
    })
    return {"project": project, "tasks": tasks, "made": made, "correction": correction,
            "users": {u.username: u for u in (ann, bob, carol, rita)}}


def lines(project, fmt, **filters) -> list[dict]:
    out = [json.loads(line) for line in exporters.export_lines(
        project=project, fmt=fmt, filters=ExportFilters.from_mapping(filters))]
    assert exporters.export_count(project=project, fmt=fmt, filters=ExportFilters.from_mapping(filters)) == len(out)
    return out


def pairs(project, **filters) -> list[tuple[str, str]]:
    return sorted((row["chosen"][0]["content"], row["rejected"][0]["content"])
                  for row in lines(project, "preference", **filters))


def raw_ids(project, **filters) -> set[int]:
    return {row["annotation_id"] for row in lines(project, "raw", **filters)}


# The dataclass -----------------------------------------------------------------------------------


def test_from_mapping_reads_query_strings_and_json_and_as_dict_keeps_only_what_differs():
    filters = ExportFilters.from_mapping(
        {"exclude_gold": "true", "reviewed_only": "0", "exclude_flagged": True, "min_competence": "0.5",
         "consensus": "weight", "format": "preference"}
    )
    assert filters == ExportFilters(exclude_gold=True, exclude_flagged=True, min_competence=0.5, consensus="weight")
    assert filters.as_dict() == {"exclude_gold": True, "exclude_flagged": True, "min_competence": 0.5,
                                 "consensus": "weight"}
    assert ExportFilters.from_mapping(filters.as_dict(), strict=True) == filters
    assert ExportFilters.from_mapping({}).as_dict() == {} and not ExportFilters()


@pytest.mark.parametrize("data, field", [
    ({"exclude_gold": "maybe"}, "exclude_gold"),
    ({"reviewed_only": 2}, "reviewed_only"),
    ({"min_competence": "1.5"}, "min_competence"),
    ({"min_competence": "nan"}, "min_competence"),
    ({"min_competence": True}, "min_competence"),
    ({"consensus": "vote"}, "consensus"),
])
def test_from_mapping_names_the_bad_field(data, field):
    with pytest.raises(InvalidInput) as caught:
        ExportFilters.from_mapping(data)
    assert caught.value.field == field


def test_strict_mapping_refuses_unknown_keys_with_the_prefix():
    with pytest.raises(InvalidInput) as caught:
        ExportFilters.from_mapping({"min_competense": 0.5}, strict=True, prefix="data.")
    assert caught.value.field == "data.min_competense"
    with pytest.raises(InvalidInput) as caught:
        ExportFilters.from_mapping({"consensus": "x"}, prefix="data.")
    assert caught.value.field == "data.consensus"


# Every filter ------------------------------------------------------------------------------------


def test_no_filter_keeps_every_counted_pair_and_never_the_rejected_one(world):
    # t1: 3, t2: 3, t3: ann + rita's correction, gold: ann + bob (carol's rejected), t5: ties
    assert pairs(world["project"]) == sorted(
        [("A1", "B1")] * 2 + [("B1", "A1")] + [("A2", "B2"), ("B2", "A2"), ("B2", "A2")]
        + [("A3", "B3")] * 2 + [("A4", "B4")] * 2
    )
    assert world["made"]["gold", "carol"].pk not in raw_ids(world["project"])


def test_exclude_gold(world):
    kept = pairs(world["project"], exclude_gold=True)
    assert ("A4", "B4") not in kept and len(kept) == 8
    gold_annotations = {a.pk for (task, _), a in world["made"].items() if task == "gold"}
    assert not gold_annotations & raw_ids(world["project"], exclude_gold="1")


def test_reviewed_only_keeps_accepted_work_and_corrections(world):
    made = world["made"]
    assert raw_ids(world["project"], reviewed_only=True) == {
        made["t1", "ann"].pk, made["t2", "bob"].pk, world["correction"].pk
    }
    assert pairs(world["project"], reviewed_only=True) == [("A1", "B1"), ("A3", "B3"), ("B2", "A2")]


def test_exclude_flagged_keeps_flagged_work_a_reviewer_accepted(world):
    kept = raw_ids(world["project"], exclude_flagged=True)
    assert world["made"]["t1", "carol"].pk not in kept
    assert world["made"]["t2", "bob"].pk in kept  # flagged, then accepted
    assert len(pairs(world["project"], exclude_flagged=True)) == 9


def test_min_competence_leaves_out_labelers_below_and_keeps_unknown_ones(world):
    kept = raw_ids(world["project"], min_competence=0.5)
    assert not {a.pk for (_, who), a in world["made"].items() if who == "carol"} & kept
    assert world["correction"].pk in kept  # the reviewer has no figure: kept
    assert raw_ids(world["project"], min_competence=0.92) == {
        a.pk for (_, who), a in world["made"].items() if who == "ann"
    } - {world["made"]["gold", "carol"].pk} | {world["correction"].pk}
    assert len(pairs(world["project"], min_competence=0.5)) == 8


def test_min_competence_without_a_quality_report_is_a_400_naming_it(world):
    from django.core.cache import cache

    cache.clear()
    with pytest.raises(InvalidInput) as caught:
        exporters.export_count(project=world["project"], fmt="preference", filters=ExportFilters(min_competence=0.5))
    assert caught.value.field == "min_competence"


def test_filters_combine(world):
    assert pairs(world["project"], exclude_gold=True, reviewed_only=True, min_competence=0.92) == [
        ("A1", "B1"), ("A3", "B3")
    ]


def test_consensus_is_for_preference_only(world):
    with pytest.raises(InvalidInput) as caught:
        exporters.export_lines(project=world["project"], fmt="sft", filters=ExportFilters(consensus="margin"))
    assert caught.value.field == "consensus"


def test_ties_add_each_tied_pair_both_ways_with_margin_zero_and_keep_every_other_line(world):
    project = world["project"]
    plain = lines(project, "preference")
    tied = lines(project, "preference", ties=True)  # lines() also checks export_count against them
    extra = [row for row in tied if row not in plain]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["margin"]) for r in extra] == [
        ("A5", "B5", 0.0), ("B5", "A5", 0.0), ("A5", "B5", 0.0), ("B5", "A5", 0.0)  # ann's tie, then bob's
    ]
    assert [row for row in tied if row in plain] == plain
    assert pairs(project, ties=True, exclude_gold=True, labeler="ann") == sorted(
        [("A1", "B1"), ("A2", "B2"), ("A3", "B3"), ("A5", "B5"), ("B5", "A5")]
    )
    # The streamed response's blocks are the same lines.
    blocks = b"".join(exporters.export_blocks(project=project, fmt="preference", filters=ExportFilters(ties=True)))
    assert [json.loads(line) for line in blocks.decode().splitlines()] == tied


@pytest.mark.parametrize(("fmt", "filters"), [
    ("sft", {"ties": True}), ("raw", {"ties": "true"}), ("preference", {"ties": True, "consensus": "margin"}),
])
def test_ties_is_for_the_plain_preference_export_only(world, fmt, filters):
    with pytest.raises(InvalidInput) as caught:
        exporters.export_lines(project=world["project"], fmt=fmt, filters=ExportFilters.from_mapping(filters))
    assert caught.value.field == "ties"


# Raw extras --------------------------------------------------------------------------------------


def test_raw_rows_carry_competence_and_review_state(world):
    ReviewItem.objects.create(
        project=world["project"], annotation=world["made"]["t1", "bob"], task=world["tasks"]["t1"],
        labeler=world["users"]["bob"], reason="sample",
    )
    rows = {row["annotation_id"]: row for row in lines(world["project"], "raw")}
    made = world["made"]
    assert rows[made["t1", "ann"].pk]["review_state"] == "accepted"
    assert rows[made["t1", "ann"].pk]["labeler_competence"] == 0.95
    assert rows[made["t1", "bob"].pk]["review_state"] == "pending"
    assert rows[made["t1", "carol"].pk]["review_state"] == "unreviewed"
    assert rows[made["t1", "carol"].pk]["labeler_competence"] == 0.3
    assert rows[world["correction"].pk]["review_state"] == "correction"
    assert rows[world["correction"].pk]["labeler_competence"] is None
    assert made["t3", "bob"].pk not in rows  # corrected: gave way to the correction


# Consensus ---------------------------------------------------------------------------------------


def crowdkit_reference(world, *, labels: dict[tuple[str, str], str], known: dict[str, str]):
    """crowd-kit's DawidSkene on the same judgments, fitted directly."""
    tasks, users = world["tasks"], world["users"]
    frame = pd.DataFrame(
        [(tasks[t].pk, users[who].pk, label) for (t, who), label in labels.items()], columns=["task", "worker", "label"]
    ).sort_values(["task", "worker"], kind="stable").reset_index(drop=True)
    true = pd.Series(list(known.values()), index=pd.Index([tasks[t].pk for t in known], name="task"))
    return DawidSkene(n_iter=100, tol=1e-5).fit(frame, true_labels=true)


def test_consensus_pair_is_the_dawid_skene_winner_with_its_posterior(world):
    labels = {("t1", "ann"): "1", ("t1", "bob"): "1", ("t1", "carol"): "2", ("t2", "ann"): "1",
              ("t2", "bob"): "2", ("t2", "carol"): "2", ("t3", "ann"): "1", ("t3", "rita"): "1",
              ("gold", "ann"): "1", ("gold", "bob"): "1", ("t5", "ann"): "1=2", ("t5", "bob"): "1=2"}
    model = crowdkit_reference(world, labels=labels, known={"gold": "1"})
    found = {p.task_id: p for p in consensus.consensus_pairs(project=world["project"])}
    tasks = world["tasks"]
    assert set(found) == {tasks[t].pk for t in ("t1", "t2", "t3", "gold")}  # t5's consensus is a tie
    for name in ("t1", "t2", "t3", "gold"):
        winner = model.labels_[tasks[name].pk]
        a, b = ids(tasks[name])
        assert (found[tasks[name].pk].chosen_id, found[tasks[name].pk].rejected_id) == ((a, b) if winner == "1" else (b, a))
        assert found[tasks[name].pk].confidence == pytest.approx(model.probas_.at[tasks[name].pk, winner], abs=1e-12)
    assert found[tasks["gold"].pk].confidence == pytest.approx(1.0)  # pinned to the known answer

    margin_rows = lines(world["project"], "preference", consensus="margin")
    weight_rows = lines(world["project"], "preference", consensus="weight")
    assert len(margin_rows) == len(weight_rows) == 4
    by_prompt = {row["chosen"][0]["content"]: row for row in weight_rows}
    t2 = found[tasks["t2"].pk]
    t2_row = next(row for row in weight_rows if row["chosen"][0]["content"] in ("A2", "B2"))
    assert t2_row["weight"] == pytest.approx(t2.confidence, abs=1e-6) and "margin" not in t2_row
    assert 0.0 <= min(row["weight"] for row in by_prompt.values()) <= 1.0
    margins = sorted(row["margin"] for row in margin_rows)
    assert margins == pytest.approx(sorted(max(0.0, 2 * p.confidence - 1) for p in found.values()), abs=1e-6)


def test_consensus_leaves_out_all_bad_and_honours_the_row_filters(world):
    t6 = comparison_task(project=world["project"], texts=("A6", "B6"))
    for who in ("ann", "bob"):
        judge(t6, world["users"][who], "AB", all_bad=True)
    chosen = {row["chosen"][0]["content"] for row in lines(world["project"], "preference", consensus="margin")}
    assert "A6" not in chosen and "B6" not in chosen
    filtered = lines(world["project"], "preference", consensus="weight", exclude_gold=True)
    assert {row["chosen"][0]["content"][1] for row in filtered} == {"1", "2", "3"}


def test_consensus_of_three_responses_rejects_the_consensus_worst(world):
    task = comparison_task(project=world["project"], texts=("X", "Y", "Z"))
    x, y, z = ids(task)
    for who, ranking in (("ann", [[x], [y], [z]]), ("bob", [[x], [z], [y]]), ("carol", [[y], [x], [z]])):
        Annotation.objects.create(task=task, project=task.project, labeler=world["users"][who],
                                  kind=Annotation.Kind.COMPARISON, ranking=ranking, client_id=uuid.uuid4())
    found = {p.task_id: p for p in consensus.consensus_pairs(project=world["project"])}
    assert (found[task.pk].chosen_id, found[task.pk].rejected_id) == (x, z)
    assert 0.5 < found[task.pk].confidence <= 1.0 and np.isfinite(found[task.pk].confidence)


def test_confidence_margin_maps_a_coin_flip_to_zero_and_certainty_to_one():
    assert consensus.confidence_margin(0.5) == 0.0
    assert consensus.confidence_margin(0.3) == 0.0
    assert consensus.confidence_margin(0.75) == 0.5
    assert consensus.confidence_margin(1.0) == 1.0


# The API, the command and the page -------------------------------------------------------------


@pytest.fixture
def engineer(world):
    return member(world["project"], role=Membership.Role.ENGINEER, username="erin")


def test_api_export_applies_the_filters(client_for, world, engineer):
    response = client_for(engineer).get(
        f"/api/projects/{world['project'].pk}/export/",
        {"format": "preference", "exclude_gold": "true", "reviewed_only": "1", "min_competence": "0.92"},
    )
    assert response.status_code == 200
    body = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in body) == [("A1", "B1"), ("A3", "B3")]


@pytest.mark.parametrize("query, field", [
    ({"format": "preference", "exclude_gold": "perhaps"}, "exclude_gold"),
    ({"format": "preference", "min_competence": "-0.1"}, "min_competence"),
    ({"format": "preference", "consensus": "majority"}, "consensus"),
    ({"format": "raw", "consensus": "weight"}, "consensus"),
])
def test_api_bad_filters_are_400s_naming_the_field(client_for, world, engineer, query, field):
    response = client_for(engineer).get(f"/api/projects/{world['project'].pk}/export/", query)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_export_project_command_takes_the_filters(world, tmp_path):
    from django.core.management import CommandError, call_command

    target = tmp_path / "pairs.jsonl"
    call_command("export_project", world["project"].slug, "--format", "preference", "--consensus", "weight",
                 "--exclude-gold", "--output", str(target), stderr=StringIO())
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 3 and all(0 <= row["weight"] <= 1 for row in rows)
    with pytest.raises(CommandError, match="--min-competence"):
        call_command("export_project", world["project"].slug, "--format", "sft", "--min-competence", "2",
                     stdout=StringIO(), stderr=StringIO())
    call_command("export_project", world["project"].slug, "--format", "preference", "--ties",
                 "--output", str(target), stderr=StringIO())
    assert sum(json.loads(line)["margin"] == 0.0 for line in target.read_text().splitlines()) == 4  # t5's ties
    with pytest.raises(CommandError, match="--ties: ties applies to the preference format only"):
        call_command("export_project", world["project"].slug, "--format", "raw", "--ties",
                     stdout=StringIO(), stderr=StringIO())


def test_export_page_has_the_filter_form(client, world, engineer):
    client.force_login(engineer)
    html = client.get(f"/projects/{world['project'].pk}/export/").content.decode()
    assert f'action="/api/projects/{world["project"].pk}/export/"' in html
    for name in ("exclude_gold", "reviewed_only", "exclude_flagged", "min_competence", "consensus", "ties"):
        assert f'name="{name}"' in html


# The counts endpoint -----------------------------------------------------------------------------


def test_counts_say_what_each_filter_keeps_and_what_they_keep_together(client_for, world, engineer):
    response = client_for(engineer).get(
        f"/api/projects/{world['project'].pk}/export/counts/",
        {"format": "preference", "exclude_gold": "true", "min_competence": "0.5"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["all"] == 10
    assert body["each"] == {"exclude_gold": 8, "reviewed_only": 3, "exclude_flagged": 9, "min_competence": 8,
                            "consensus": 4, "ties": 14}  # ties adds t5's two ties, two pairs each
    assert body["selected"] == 6  # carol and gold out: t1, t2 by ann and bob; t3 by ann and rita (her correction)
    assert body["filters"] == {"exclude_gold": True, "min_competence": 0.5} and body["errors"] == {}


def test_counts_of_sft_have_no_consensus_and_a_missing_report_is_explained(client_for, world, engineer):
    from django.core.cache import cache

    cache.clear()
    body = client_for(engineer).get(
        f"/api/projects/{world['project'].pk}/export/counts/", {"format": "sft", "min_competence": "0.5"}
    ).json()
    assert body["each"]["consensus"] is None and body["each"]["ties"] is None and body["each"]["min_competence"] is None
    assert body["selected"] is None and "quality report" in body["errors"]["min_competence"]


def test_counts_are_for_those_who_may_export(client_for, world):
    url = f"/api/projects/{world['project'].pk}/export/counts/?format=preference"
    assert client_for(world["users"]["ann"]).get(url).status_code == 403  # a labeler of the project
    assert client_for(world["users"]["rita"]).get(url).status_code == 403  # a reviewer
    assert client_for(member(ProjectFactory(), role=Membership.Role.ADMIN)).get(url).status_code == 404


@pytest.mark.parametrize("query, field", [
    ({"format": "csv"}, "format"),
    ({"format": "preference", "reviewed_only": "yes please"}, "reviewed_only"),
])
def test_counts_bad_query_is_a_400_naming_it(client_for, world, engineer, query, field):
    response = client_for(engineer).get(f"/api/projects/{world['project'].pk}/export/counts/", query)
    assert response.status_code == 400 and response.json()["field"] == field
