"""Edit to improve: a labeler's rewrite of the best response, through the API, into the exports and in Chromium."""

import json
import uuid

import pytest

from annotation import exporters, services
from annotation.models import Annotation, Lease, Membership, Response, Task
from annotation.validation import MAX_TEXT_CHARS
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db

PROMPT = [{"role": "user", "content": "Explain tides in one sentence."}]
GOOD, BAD = "The moon pulls the sea.", "Tides are weather."
EDIT = "The moon's gravity pulls the oceans into bulges, and the Earth turns under them."


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


@pytest.fixture
def labeler(project):
    return member(project, username="editor")


def claim_pair(client, project, texts=(GOOD, BAD)):
    """Make and claim a pair through the API; returns (task id, {text: response id})."""
    comparison_task(project=project, texts=texts, prompt__messages=PROMPT)
    response = client.post(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 200, response.content
    body = response.json()
    return body["id"], {r["text"]: r["id"] for r in body["responses"]}


def submit(client, task_id, body):
    return client.post(f"/api/tasks/{task_id}/annotations/", {"client_id": str(uuid.uuid4()), **body}, format="json")


def export_rows(client, project, fmt) -> list[dict]:
    response = client.get(f"/api/projects/{project.pk}/export/", {"format": fmt})
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_an_edit_is_stored_as_a_human_demonstration_linked_from_the_comparison(client_for, project, labeler):
    client = client_for(labeler)
    task_id, ids = claim_pair(client, project)
    body = {"ranking": [[ids[GOOD]], [ids[BAD]]], "strength": "better",
            "edit": {"response_id": ids[GOOD], "text": EDIT}}
    response = submit(client, task_id, body)
    assert response.status_code == 201, response.content

    annotation = Annotation.objects.get(task_id=task_id)
    edit = annotation.edited_response
    assert response.json()["edited_response"] == edit.pk
    assert (edit.text, edit.source, edit.author, edit.edited_from_id) == (EDIT, Response.Source.HUMAN, labeler, ids[GOOD])
    assert edit.prompt_id == Task.objects.get(pk=task_id).prompt_id
    assert annotation.ranking == [[ids[GOOD]], [ids[BAD]]] and annotation.strength == "better"
    assert Task.objects.get(pk=task_id).done == 1
    # The original is untouched; the edit is not one of the task's shown responses.
    assert Response.objects.get(pk=ids[GOOD]).text == GOOD
    assert edit.pk not in Task.objects.get(pk=task_id).task_responses.values_list("response_id", flat=True)


def test_a_replayed_submit_with_an_edit_stores_one_edit(client_for, project, labeler):
    client = client_for(labeler)
    task_id, ids = claim_pair(client, project)
    body = {"client_id": str(uuid.uuid4()), "ranking": [[ids[GOOD], ids[BAD]]],  # a tie: either may be edited
            "edit": {"response_id": ids[BAD], "text": EDIT}}
    first = client.post(f"/api/tasks/{task_id}/annotations/", body, format="json")
    again = client.post(f"/api/tasks/{task_id}/annotations/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["edited_response"] == again.json()["edited_response"]
    assert Response.objects.filter(source=Response.Source.HUMAN).count() == 1


LONG = "x" * (MAX_TEXT_CHARS + 1)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ("rewrite", "edit", "object"),
        ({"response_id": "one", "text": EDIT}, "edit.response_id", "id of the response"),
        ({"response_id": True, "text": EDIT}, "edit.response_id", "id of the response"),
        ({"response_id": "LOSER", "text": EDIT}, "edit.response_id", "top-ranked"),
        ({"response_id": 10**9, "text": EDIT}, "edit.response_id", "top-ranked"),
        ({"response_id": "BEST"}, "edit.text", "string"),
        ({"response_id": "BEST", "text": "   \n "}, "edit.text", "empty"),
        ({"response_id": "BEST", "text": LONG}, "edit.text", f"longer than {MAX_TEXT_CHARS}"),
        ({"response_id": "BEST", "text": f"  {GOOD}\n"}, "edit.text", "identical"),
        ({"response_id": "BEST", "text": EDIT, "why": "x"}, "edit", "unknown key 'why'"),
    ],
)
def test_a_bad_edit_is_a_400_naming_the_field_and_stores_nothing(client_for, project, labeler, edit, field, words):
    client = client_for(labeler)
    task_id, ids = claim_pair(client, project)
    if isinstance(edit, dict):
        edit = {k: {"BEST": ids[GOOD], "LOSER": ids[BAD]}.get(v, v) if k == "response_id" else v for k, v in edit.items()}
    responses_before = Response.objects.count()
    response = submit(client, task_id, {"ranking": [[ids[GOOD]], [ids[BAD]]], "strength": "better", "edit": edit})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert not Annotation.objects.exists()
    assert Response.objects.count() == responses_before
    assert Task.objects.get(pk=task_id).done == 0
    assert Lease.objects.filter(task_id=task_id, labeler=labeler).exists()  # the labeler can fix it and resubmit


def test_an_all_bad_judgement_without_a_ranking_cannot_edit(client_for, project, labeler):
    client = client_for(labeler)
    task_id, ids = claim_pair(client, project)
    response = submit(client, task_id, {"all_bad": True, "ranking": [], "edit": {"response_id": ids[GOOD], "text": EDIT}})
    assert response.status_code == 400
    assert response.json()["field"] == "edit.response_id" and "Rank" in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_exports_carry_the_edit_as_demonstration_preference_pair_and_raw(client_for, project, admin, labeler):
    client = client_for(labeler)
    TaskFactory(project=project, prompt__messages=[{"role": "user", "content": "Say hi."}])
    demo_task = services.task_claim_next(project=project, labeler=labeler, kind="demonstration")
    services.annotation_submit(task=demo_task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "Hi!"})
    # A ranking of three with an edit of the winner, and a plain pair without one.
    task_id, ids = claim_pair(client, project, texts=(GOOD, BAD, "Tides come and go."))
    ranking = [[ids[GOOD]], [ids["Tides come and go."]], [ids[BAD]]]
    assert submit(client, task_id, {"ranking": ranking, "edit": {"response_id": ids[GOOD], "text": EDIT}}).status_code == 201
    plain_id, plain = claim_pair(client, project, texts=("Yes.", "No."))
    assert submit(client, plain_id, {"ranking": [[plain["Yes."]], [plain["No."]]], "strength": "much_better"}).status_code == 201

    assistant = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    exporter = client_for(admin)
    sft = export_rows(exporter, project, "sft")
    assert sft == [
        {"messages": [{"role": "user", "content": "Say hi."}] + assistant("Hi!")},
        {"messages": PROMPT + assistant(EDIT)},
    ]
    preference = export_rows(exporter, project, "preference")
    edited = [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["margin"]) for r in preference[:4]]
    assert edited == [
        (GOOD, "Tides come and go.", 0.25), (GOOD, BAD, 0.5), ("Tides come and go.", BAD, 0.25),
        (EDIT, GOOD, exporters.EDIT_MARGIN),  # the edit over the original, after the ranking's pairs
    ]
    assert exporters.EDIT_MARGIN == 1.0
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in preference[4:]] == [("Yes.", "No.")]
    assert all(r["prompt"] == PROMPT for r in preference)
    raw = {r["task_id"]: r for r in export_rows(exporter, project, "raw")}
    assert raw[task_id]["edit"] == {"response_id": ids[GOOD], "text": EDIT}
    assert raw[plain_id]["edit"] is None
    assert "edit" not in raw[demo_task.pk]


def test_an_edit_of_a_tied_top_still_exports_its_pair(client_for, project, admin, labeler):
    client = client_for(labeler)
    task_id, ids = claim_pair(client, project)
    body = {"ranking": [[ids[GOOD], ids[BAD]]], "edit": {"response_id": ids[GOOD], "text": EDIT}}
    assert submit(client, task_id, body).status_code == 201
    preference = export_rows(client_for(admin), project, "preference")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["margin"]) for r in preference] == [
        (EDIT, GOOD, 1.0)
    ]


def test_export_with_edits_reads_a_fixed_number_of_queries(project, labeler, django_assert_max_num_queries):
    for i in range(6):
        comparison_task(project=project, texts=(f"a{i}", f"b{i}"))
    for i in range(6):
        task = services.task_claim_next(project=project, labeler=labeler)
        a, b = task.task_responses.order_by("position").values_list("response_id", flat=True)
        data = {"ranking": [[a], [b]], "strength": "better", "edit": {"response_id": a, "text": f"better a{i}"}}
        services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
    for fmt, expected in (("sft", 6), ("preference", 12), ("raw", 6)):
        with django_assert_max_num_queries(3):
            assert len(list(exporters.export_lines(project=project, fmt=fmt))) == expected
