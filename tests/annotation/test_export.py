"""Exports through the API, on annotations made by the real claim and submit services."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotation import exporters, services
from annotation.export_pairs import annotation_pairs
from annotation.models import Membership, Task
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, UserFactory, comparison_task, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


@pytest.fixture
def labeler(project):
    return member(project, username="labeler-ann")


def claim_and_submit(project, labeler, data, *, kind=None, time_spent_ms=1500):
    task = services.task_claim_next(project=project, labeler=labeler, kind=kind)
    assert task is not None
    annotation, created = services.annotation_submit(
        task=task, labeler=labeler, client_id=uuid.uuid4(), data=data, time_spent_ms=time_spent_ms
    )
    assert created
    return task, annotation


def rank(project, labeler, order, **extra):
    """Claim the next comparison and rank its responses by text: order is a list of groups of texts."""
    task = services.task_claim_next(project=project, labeler=labeler, kind=Task.Kind.COMPARISON)
    ids = {tr.response.text: tr.response_id for tr in task.task_responses.select_related("response")}
    data = {"ranking": [[ids[t] for t in group] for group in order], **extra}
    annotation, _ = services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
    return task, annotation


def export(client, project, fmt) -> bytes:
    response = client.get(f"/api/projects/{project.pk}/export/", {"format": fmt})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    return b"".join(response.streaming_content)


def rows(content: bytes) -> list[dict]:
    text = content.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def user_turn(text):
    return [{"role": "user", "content": text}]


def test_sft_export_is_prompt_plus_demonstration(client_for, project, admin, labeler):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    TaskFactory(project=project, prompt=PromptFactory(project=project, messages=chat))
    TaskFactory(project=project, prompt=PromptFactory(project=project, messages=user_turn("Say hi.")))
    comparison_task(project=project)  # comparisons never reach the sft export
    claim_and_submit(project, labeler, {"text": "Blue."}, kind=Task.Kind.DEMONSTRATION)
    claim_and_submit(project, labeler, {"text": "Hi **there**."}, kind=Task.Kind.DEMONSTRATION)
    rank(project, labeler, [["First answer."], ["Second answer."]], strength="better")

    assert rows(export(client_for(admin), project, "sft")) == [
        {"messages": chat + [{"role": "assistant", "content": "Blue."}]},
        {"messages": user_turn("Say hi.") + [{"role": "assistant", "content": "Hi **there**."}]},
    ]


def test_preference_pair_takes_its_margin_from_the_strength(client_for, project, admin, labeler):
    comparison_task(project=project, texts=("Good.", "Bad."), prompt__messages=user_turn("Q1"))
    comparison_task(project=project, texts=("Fine.", "Meh."), prompt__messages=user_turn("Q2"))
    comparison_task(project=project, texts=("Ok.", "Worse."), prompt__messages=user_turn("Q3"))
    rank(project, labeler, [["Good."], ["Bad."]], strength="much_better")
    rank(project, labeler, [["Meh."], ["Fine."]], strength="slightly_better")
    rank(project, labeler, [["Ok."], ["Worse."]], strength="better")

    assert rows(export(client_for(admin), project, "preference")) == [
        {"prompt": user_turn("Q1"), "chosen": [{"role": "assistant", "content": "Good."}],
         "rejected": [{"role": "assistant", "content": "Bad."}], "margin": 1.0},
        {"prompt": user_turn("Q2"), "chosen": [{"role": "assistant", "content": "Meh."}],
         "rejected": [{"role": "assistant", "content": "Fine."}], "margin": 0.25},
        {"prompt": user_turn("Q3"), "chosen": [{"role": "assistant", "content": "Ok."}],
         "rejected": [{"role": "assistant", "content": "Worse."}], "margin": 0.5},
    ]


def pairs(content: bytes) -> list[tuple[str, str, float]]:
    return [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["margin"]) for r in rows(content)]


def test_a_ranking_of_three_with_a_tie_gives_exactly_its_pairs(client_for, project, admin, labeler):
    comparison_task(project=project, texts=("A", "B", "C"))
    comparison_task(project=project, texts=("D", "E", "F", "G"))
    rank(project, labeler, [["B", "C"], ["A"]])  # B and C tie, both beat A
    rank(project, labeler, [["G"], ["E"], ["D", "F"]])

    assert pairs(export(client_for(admin), project, "preference")) == [
        ("B", "A", 0.25),
        ("C", "A", 0.25),
        ("G", "E", 0.25),
        # two ranks apart: twice the margin
        ("G", "D", 0.5),
        ("G", "F", 0.5),
        ("E", "D", 0.25),
        ("E", "F", 0.25),
    ]


def test_ties_all_bad_and_skips_give_no_pairs(client_for, project, admin, labeler):
    comparison_task(project=project, texts=("Same A", "Same B"))
    comparison_task(project=project, texts=("Bad A", "Bad B", "Bad C"))
    comparison_task(project=project, texts=("Skip A", "Skip B"))
    rank(project, labeler, [["Same A", "Same B"]])
    task = services.task_claim_next(project=project, labeler=labeler)
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"all_bad": True})
    task = services.task_claim_next(project=project, labeler=labeler)
    services.task_skip(task=task, labeler=labeler, reason="Cannot judge this.")

    client = client_for(admin)
    assert export(client, project, "preference") == b""
    assert [r["kind"] for r in rows(export(client, project, "raw"))] == ["comparison", "comparison", "skip"]


def test_ranking_pairs_rule():
    assert exporters.ranking_pairs(ranking=[[1], [2]], strength="better") == [(1, 2, 0.5)]
    assert exporters.ranking_pairs(ranking=[[1, 2]], strength="tie") == []
    gaps = exporters.ranking_pairs(ranking=[[1], [2], [3], [4], [5], [6]])
    assert dict(((b, w), m) for b, w, m in gaps)[(1, 6)] == 1.0  # five ranks apart, capped at 1.0
    assert len(gaps) == 15


def test_ranking_pairs_with_ties_add_each_tied_pair_both_ways_at_margin_zero():
    assert exporters.ranking_pairs(ranking=[[1, 2]], ties=True) == [(1, 2, 0.0), (2, 1, 0.0)]
    mixed = exporters.ranking_pairs(ranking=[[3], [2, 1]], ties=True)
    assert mixed == [(3, 1, 0.25), (3, 2, 0.25), (1, 2, 0.0), (2, 1, 0.0)]  # ordered pairs first, as before
    assert len(exporters.ranking_pairs(ranking=[[1, 2, 3]], ties=True)) == 6
    assert exporters.ranking_pairs(ranking=[[1], [2]], strength="better", ties=True) == [(1, 2, 0.5)]
    assert annotation_pairs(ranking=[[1, 2]], strength="", all_bad=True, edit=None, ties=True) == []


def test_raw_export_has_every_annotation_with_a_pseudonymous_labeler(client_for, project, admin, labeler):
    other = member(project, username="labeler-bob")
    prompt = PromptFactory(project=project, messages=user_turn("Explain tides."), external_id="tides-1")
    TaskFactory(project=project, prompt=prompt)
    comparison_task(project=project, texts=("Left", "Right"), prompt__external_id="cmp-1")
    TaskFactory(project=project, prompt=PromptFactory(project=project, external_id="skipped-1"))
    demo_task, _ = claim_and_submit(project, labeler, {"text": "The moon pulls."}, kind="demonstration",
                                    time_spent_ms=4200)
    cmp_task, cmp = rank(project, other, [["Right"], ["Left"]], strength="better", rationale="Clearer.",
                         flags={})
    skip_task = services.task_claim_next(project=project, labeler=other, kind="demonstration")
    services.task_skip(task=skip_task, labeler=other, reason="Not my field.", time_spent_ms=900)

    content = export(client_for(admin), project, "raw")
    demo, comparison, skip = rows(content)
    assert demo["task_id"] == demo_task.pk and demo["kind"] == "demonstration"
    assert demo["prompt_id"] == "tides-1"
    assert demo["messages"] == user_turn("Explain tides.")
    assert demo["text"] == "The moon pulls."
    assert demo["time_spent_ms"] == 4200 and demo["lease_expired"] is False
    assert demo["created_at"].startswith("20")
    assert comparison["task_id"] == cmp_task.pk and comparison["prompt_id"] == "cmp-1"
    assert comparison["ranking"] == cmp.ranking and comparison["strength"] == "better"
    assert comparison["rationale"] == "Clearer." and comparison["all_bad"] is False
    assert sorted(r["text"] for r in comparison["responses"]) == ["Left", "Right"]
    assert skip["kind"] == "skip" and skip["reason"] == "Not my field." and skip["prompt_id"] == "skipped-1"
    assert skip["time_spent_ms"] == 900

    # Pseudonyms: stable per labeler, distinct between labelers, and not the user's id or name.
    assert comparison["labeler"] == skip["labeler"] != demo["labeler"]
    assert len(demo["labeler"]) == 16
    assert demo["labeler"] == exporters.labeler_pseudonym(labeler.pk)
    for secret in (labeler.username, other.username, f'"labeler": {labeler.pk}', f'"labeler": "{labeler.pk}"'):
        assert secret not in content.decode()


def test_exports_are_deterministic_and_scoped_to_the_project(client_for, project, admin, labeler):
    stranger_project = ProjectFactory()
    stranger = member(stranger_project)
    TaskFactory(project=stranger_project, prompt__messages=user_turn("Elsewhere?"))
    claim_and_submit(stranger_project, stranger, {"text": "Secret elsewhere answer."})
    for i in range(3):
        TaskFactory(project=project, prompt__messages=user_turn(f"Q{i}"))
        comparison_task(project=project, texts=(f"x{i}", f"y{i}", f"z{i}"))
    for _ in range(3):
        claim_and_submit(project, labeler, {"text": "An answer."}, kind="demonstration")
    for i in range(3):
        rank(project, labeler, [[f"z{i}"], [f"x{i}", f"y{i}"]])

    client = client_for(admin)
    for fmt in exporters.FORMATS:
        first, second = export(client, project, fmt), export(client, project, fmt)
        assert first == second
        assert first  # each format has lines here
        assert b"elsewhere" not in first.lower()
    assert len(rows(export(client, project, "preference"))) == 6
    assert len(rows(export(client, project, "raw"))) == 6


def test_export_reads_a_fixed_number_of_queries(project, labeler, django_assert_max_num_queries):
    for i in range(12):
        comparison_task(project=project, texts=(f"a{i}", f"b{i}", f"c{i}"))
        TaskFactory(project=project)
    for i in range(12):
        rank(project, labeler, [[f"a{i}"], [f"b{i}"], [f"c{i}"]])
        claim_and_submit(project, labeler, {"text": f"demo {i}"}, kind="demonstration")
    for fmt, expected in (("sft", 12), ("preference", 36), ("raw", 24)):
        with django_assert_max_num_queries(3):
            assert len(list(exporters.export_lines(project=project, fmt=fmt))) == expected


@pytest.mark.parametrize("fmt", ["", "csv", "SFT", "preferences"])
def test_an_unknown_format_is_a_400(client_for, project, admin, fmt):
    response = client_for(admin).get(f"/api/projects/{project.pk}/export/", {"format": fmt})
    assert response.status_code == 400
    assert response.json()["field"] == "format"


def test_labelers_get_403_and_strangers_404(client_for, project, labeler):
    url = f"/api/projects/{project.pk}/export/?format=raw"
    assert client_for(labeler).get(url).status_code == 403
    assert client_for(UserFactory()).get(url).status_code == 404


def test_export_project_command(client_for, project, admin, labeler, tmp_path):
    comparison_task(project=project, texts=("P", "Q"))
    rank(project, labeler, [["P"], ["Q"]], strength="better")
    out = StringIO()
    call_command("export_project", project.slug, "--format", "preference", stdout=out, stderr=StringIO())
    assert out.getvalue().encode() == export(client_for(admin), project, "preference")
    target = tmp_path / "raw.jsonl"
    call_command("export_project", project.slug, "--format", "raw", "--output", str(target), stderr=StringIO())
    assert target.read_bytes() == export(client_for(admin), project, "raw")
    with pytest.raises(CommandError):
        call_command("export_project", "no-such-project", "--format", "sft")
