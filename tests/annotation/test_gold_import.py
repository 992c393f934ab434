"""Import of gold lines: gold tasks with their answers in response ids, and line-numbered errors."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Lease, Membership, Prompt, Response, Task, TaskResponse
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(overlap=2)


@pytest.fixture
def api(client_for, project):
    return client_for(member(project, role=Membership.Role.ADMIN))


def jsonl(*objects) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


def upload(api, project, content: bytes, name: str = "gold.jsonl", **fields):
    files = {"file": SimpleUploadedFile(name, content), **fields}
    return api.post(f"/api/projects/{project.pk}/import/", files, format="multipart")


def response_ids(task: Task) -> dict[str, int]:
    return dict(Response.objects.filter(tasks=task).values_list("text", "pk"))


def counts():
    return Prompt.objects.count(), Task.objects.count(), Response.objects.count(), TaskResponse.objects.count()


def test_gold_lines_become_gold_tasks_with_their_answers_in_response_ids(api, project):
    body = jsonl(
        {"id": "real", "prompt": "Which?", "responses": ["a", "b"]},
        {"id": "g1", "prompt": "2 + 2?", "responses": ["four", "five"], "gold": {"ranking": [[0], [1]]},
         "explanation": "Arithmetic."},
        {"id": "g2", "prompt": "Rank", "responses": ["x", "y", "z"],
         "gold": {"ranking": [[2, 0], 1], "explanation": "x and z are both right."}},
        {"id": "g3", "prompt": "Capital of France?", "gold": {"reference": "Paris."}},
        {"id": "plain", "prompt": "Write.", "gold": None},
    )
    response = upload(api, project, body)
    assert response.status_code == 200, response.content
    assert response.json()["created_tasks"] == 5

    tasks = {t.prompt.external_id: t for t in Task.objects.select_related("prompt")}
    assert not tasks["real"].is_gold and tasks["real"].gold is None
    assert not tasks["plain"].is_gold and tasks["plain"].gold is None
    g1, g2, g3 = tasks["g1"], tasks["g2"], tasks["g3"]
    assert g1.is_gold and g2.is_gold and g3.is_gold
    ids = response_ids(g1)
    assert g1.gold == {"ranking": [[ids["four"]], [ids["five"]]], "explanation": "Arithmetic."}
    ids = response_ids(g2)
    assert g2.gold == {"ranking": [[ids["z"], ids["x"]], [ids["y"]]], "explanation": "x and z are both right."}
    assert g3.kind == Task.Kind.DEMONSTRATION
    assert g3.gold == {"reference": "Paris.", "explanation": ""}
    # Gold tasks are made like the others: open, with the project's overlap, responses shown shuffled.
    assert {t.status for t in tasks.values()} == {Task.Status.OPEN}
    assert {t.required for t in tasks.values()} == {2}
    assert sorted(g2.task_responses.values_list("position", flat=True)) == [0, 1, 2]


def test_gold_display_order_is_drawn_as_for_real_tasks(api, project):
    body = jsonl(*[{"prompt": f"Q{i}", "responses": ["r0", "r1", "r2", "r3"], "gold": {"ranking": [0, 1, 2, 3]}}
                   for i in range(30)])
    assert upload(api, project, body).status_code == 200
    firsts = {task.task_responses.get(position=0).response.text for task in Task.objects.filter(is_gold=True)}
    assert len(firsts) > 1  # the best answer is not always shown first (30 draws all equal: 4**-29)


def test_a_csv_gold_cell_and_explanation_cell(api, project):
    body = ('id,prompt,response_1,response_2,gold,explanation\r\n'
            'c1,Pick,yes,no,"{""ranking"": [[1], [0]]}",Because no.\r\n'
            'c2,Write,,,"{""reference"": ""Hello.""}",\r\n'
            'c3,Plain,a,b,,\r\n')
    response = upload(api, project, body.encode(), name="gold.csv")
    assert response.status_code == 200, response.content
    c1 = Task.objects.get(prompt__external_id="c1")
    ids = response_ids(c1)
    assert c1.gold == {"ranking": [[ids["no"]], [ids["yes"]]], "explanation": "Because no."}
    assert Task.objects.get(prompt__external_id="c2").gold == {"reference": "Hello.", "explanation": ""}
    assert not Task.objects.get(prompt__external_id="c3").is_gold


def test_a_line_without_id_gets_another_content_id_when_gold(api, project):
    plain = {"prompt": "Same?", "responses": ["a", "b"]}
    body = jsonl(plain, {**plain, "gold": {"ranking": [[0], [1]]}})
    assert upload(api, project, body).json()["created_tasks"] == 2


PAIR = {"prompt": "Which?", "responses": ["a", "b"]}
BAD_GOLD = [
    ({**PAIR, "gold": [[0], [1]]}, "gold must be an object"),
    ({**PAIR, "gold": "0"}, "gold must be an object"),
    ({**PAIR, "gold": {"rank": [[0], [1]]}}, "gold: unknown key 'rank'"),
    ({**PAIR, "gold": {}}, "gold.ranking must be a non-empty list"),
    ({**PAIR, "gold": {"ranking": []}}, "gold.ranking must be a non-empty list"),
    ({**PAIR, "gold": {"ranking": "0,1"}}, "gold.ranking must be a non-empty list"),
    ({**PAIR, "gold": {"ranking": [[0], []]}}, "gold.ranking[1] is an empty group"),
    ({**PAIR, "gold": {"ranking": [[0], [2]]}}, "gold.ranking[1] names response 2, but the line's responses are 0 to"),
    ({**PAIR, "gold": {"ranking": [[0], [-1]]}}, "names response -1"),
    ({**PAIR, "gold": {"ranking": [[0], [True]]}}, "gold.ranking[1] holds true, not a response index"),
    ({**PAIR, "gold": {"ranking": [[0], ["1"]]}}, "gold.ranking[1] holds \"1\", not a response index"),
    ({**PAIR, "gold": {"ranking": [[0], [1.0]]}}, "holds 1.0, not a response index"),
    ({**PAIR, "gold": {"ranking": [[0, 0], [1]]}}, "gold.ranking names response 0 twice"),
    ({**PAIR, "gold": {"ranking": [[0]]}}, "must place every response once; it leaves out 1"),
    ({**PAIR, "gold": {"ranking": [[0], [1]], "reference": "a"}}, "gold.reference is for a demonstration"),
    ({"prompt": "Write", "gold": {"ranking": [[0], [1]]}}, "gold.ranking needs \"responses\" to rank"),
    ({"prompt": "Write", "gold": {}}, "gold needs an answer"),
    ({"prompt": "Write", "gold": {"reference": ""}}, "gold.reference is empty"),
    ({"prompt": "Write", "gold": {"reference": 5}}, "gold.reference must be a string"),
    ({"prompt": "Write", "gold": {"reference": "x" * 50_001}}, "gold.reference is longer than"),
    ({**PAIR, "explanation": "Why."}, "explanation explains a gold answer"),
    ({**PAIR, "gold": {"ranking": [[0], [1]], "explanation": "a"}, "explanation": "b"}, "give the explanation once"),
    ({**PAIR, "gold": {"ranking": [[0], [1]]}, "explanation": ""}, "explanation is empty"),
    ({**PAIR, "gold": {"ranking": [[0], [1]]}, "explanation": ["a"]}, "explanation must be a string"),
    ({**PAIR, "gold": {"ranking": [[0], [1]], "explanation": "nul \u0000"}}, "gold.explanation contains a NUL"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_GOLD, ids=[r for _, r in BAD_GOLD])
def test_a_bad_gold_line_rejects_the_file_naming_line_and_reason(api, project, bad, reason):
    before = counts()
    body = jsonl({"prompt": "Fine."}, bad, {"prompt": "After.", "responses": ["a", "b"], "gold": {"ranking": [0, 1]}})
    response = upload(api, project, body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["field"] == "file" and data["detail"].startswith("1 line is invalid")
    assert [e["line"] for e in data["errors"]] == [2]
    assert reason in data["errors"][0]["error"], data["errors"][0]["error"]
    assert counts() == before


def test_every_bad_gold_line_is_listed(api, project):
    body = jsonl(
        {**PAIR, "gold": {"ranking": [[0], [5]]}},
        {**PAIR, "prompt": "ok", "gold": {"ranking": [[1], [0]]}},
        {"prompt": "Write", "gold": {"ranking": [[0]]}},
    )
    data = upload(api, project, body).json()
    assert [e["line"] for e in data["errors"]] == [1, 3]
    assert not Task.objects.exists()


def test_a_changed_gold_answer_is_reported_and_replaced_only_where_nobody_answered(api, project, client_for):
    first = [
        {"id": "g", "prompt": "Pick", "responses": ["a", "b"], "gold": {"ranking": [[0], [1]]}},
        {"id": "busy", "prompt": "Pick too", "responses": ["c", "d"], "gold": {"ranking": [[0], [1]]}},
        {"id": "same", "prompt": "Same", "responses": ["e", "f"], "gold": {"ranking": [[0], [1]]}},
    ]
    assert upload(api, project, jsonl(*first)).status_code == 200
    busy = Task.objects.get(prompt__external_id="busy")
    labeler = member(project)
    Lease.objects.create(task=busy, labeler=labeler, project=project, expires_at=busy.created_at)
    second = [
        {**first[0], "gold": {"ranking": [[1], [0]]}},
        {**first[1], "gold": {"ranking": [[1], [0]]}, "explanation": "Changed."},
        first[2],
    ]
    added = upload(api, project, jsonl(*second)).json()
    assert (added["skipped_existing"], added["changed_kept"]) == (3, 2)
    assert [note["line"] for note in added["notes"]] == [1, 2]

    updated = upload(api, project, jsonl(*second), mode="update").json()
    assert (updated["updated_prompts"], updated["changed_kept"]) == (1, 1)
    assert "opened" in updated["notes"][0]["message"]
    g = Task.objects.get(prompt__external_id="g")
    ids = response_ids(g)
    assert g.is_gold and g.gold["ranking"] == [[ids["b"]], [ids["a"]]]
    assert Task.objects.get(pk=busy.pk).gold["ranking"][0] == [response_ids(busy)["c"]]  # kept: a lease
    assert upload(api, project, jsonl(*second)).json()["changed_kept"] == 1  # only "busy" still differs
