"""Prompt import through the API: formats, atomic rejection naming every bad line, re-import."""

import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation import importers
from annotation.models import Membership, Prompt, Response, Task, TaskResponse
from tests.factories import ProjectFactory, UserFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(overlap=2)


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


def upload(client, project, content: bytes | str, name: str = "prompts.jsonl"):
    if isinstance(content, str):
        content = content.encode("utf-8")
    return client.post(
        f"/api/projects/{project.pk}/import/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def jsonl(*objects) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects)


# A result with nothing changed since the first import, and so nothing to report.
NO_CHANGES = {"changed_kept": 0, "updated_prompts": 0, "notes": [], "notes_not_listed": 0}


def counts():
    return (Prompt.objects.count(), Task.objects.count(), Response.objects.count(), TaskResponse.objects.count())


@pytest.fixture
def seeded(client_for, admin, project):
    """A project that already holds a prompt of each kind, so 'nothing changed' means something."""
    body = jsonl({"id": "seed-1", "prompt": "Seed?"}, {"id": "seed-2", "prompt": "Pick", "responses": ["x", "y"]})
    assert upload(client_for(admin), project, body).status_code == 200
    return counts()


GOOD = {"id": "good", "prompt": "A fine prompt."}
LONG = "x" * (importers.MAX_FIELD_CHARS + 1)
DEEP: dict = {}
_inner = DEEP
for _ in range(70):
    _inner["x"] = {}
    _inner = _inner["x"]

BAD_LINES = [
    ('{"prompt": "unterminated"', "malformed JSON"),
    ('{"prompt": NaN}', "malformed JSON"),
    ('["a list", "not an object"]', "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    ({"id": "x"}, "missing prompt"),
    ({"metadata": {"a": 1}}, "missing prompt"),
    ({"prompt": 5}, "prompt must be a string"),
    ({"prompt": ["a"]}, "prompt must be a string"),
    ({"messages": "hello"}, "messages must be a non-empty list"),
    ({"messages": []}, "messages must be a non-empty list"),
    ({"messages": ["hello"]}, "messages[0] must be an object with role and content"),
    ({"messages": [{"role": "user"}]}, "messages[0] must be an object with role and content"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content must be a string"),
    ({"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role must be a string"),
    ({"prompt": "p", "responses": "a, b"}, "responses must be a list of strings"),
    ({"prompt": "p", "responses": ["a", 2]}, "responses[1] must be a string"),
    ({"prompt": "p", "metadata": ["a"]}, "metadata must be a JSON object"),
    ({"prompt": "p", "metadata": "a=1"}, "metadata must be a JSON object"),
    ({"id": 1.5, "prompt": "p"}, "id must be a string or an integer"),
    ({"id": True, "prompt": "p"}, "id must be a string or an integer"),
    ({"id": {"a": 1}, "prompt": "p"}, "id must be a string or an integer"),
    ({"id": "  ", "prompt": "p"}, "id is empty"),
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "   \n"}, "prompt is empty"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content is empty"),
    ({"prompt": "p", "responses": ["a", " "]}, "responses[1] is empty"),
    ({"prompt": "p", "responses": ["only one"]}, "at least 2"),
    ({"prompt": "p", "responses": []}, "at least 2"),
    ({"prompt": "p", "responses": ["same", "same"]}, "repeats the same text"),
    ({"prompt": LONG}, "oversized"),
    ({"prompt": "p", "responses": ["a", LONG]}, "oversized"),
    ({"messages": [{"role": "user", "content": LONG}]}, "oversized"),
    ({"prompt": "p", "metadata": {"note": LONG}}, "oversized"),
    ({"id": "i" * 201, "prompt": "p"}, "oversized"),
    ({"id": "good", "prompt": "Same id as line 1."}, "duplicate id 'good' (also on line 1)"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "unknown role 'bot'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     "last message must be from the user"),
    ({"prompt": "p", "messages": [{"role": "user", "content": "hi"}]}, "either prompt or messages"),
    ({"prompt": "p", "respones": ["a", "b"]}, "unknown key 'respones'"),
    ({"prompt": "nul \u0000 inside"}, "NUL"),
    ({"id": "x\ud800", "prompt": "p"}, "id contains a lone surrogate"),
    ({"prompt": "p", "x\ud800": 1}, "the key x\\ud800 contains a lone surrogate"),
    ({"prompt": "p", "metadata": {"a": {"b": "\u0000"}}}, "metadata.a.b contains a NUL character"),
    ({"prompt": "p", "metadata": {"\u0000": 1}}, "the key metadata.\\u0000 contains a NUL character"),
    ({"messages": [{"role": "user\u0000", "content": "hi"}]}, "messages[0].role contains a NUL character"),
    ({"prompt": "p", "metadata": DEEP}, "is nested more than 64 levels deep"),
    ('{"prompt": "lone \\ud800 surrogate"}', "lone surrogate"),
    (b'{"prompt": "caf\xe9"}', "invalid UTF-8"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_a_bad_line_rejects_the_file_and_names_line_and_reason(client_for, admin, project, seeded, bad, reason):
    if isinstance(bad, bytes):
        body = jsonl(GOOD).encode() + bad + b"\n" + jsonl({"prompt": "After."}).encode()
    else:
        body = jsonl(GOOD, bad, {"prompt": "After."}).encode()
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["field"] == "file"
    assert data["detail"].startswith("1 line is invalid")
    assert len(data["errors"]) == 1
    assert data["errors"][0]["line"] == 2
    assert reason in data["errors"][0]["error"]
    assert counts() == seeded


def test_every_bad_line_is_reported(client_for, admin, project, seeded):
    body = jsonl(
        {"prompt": ""},  # 1
        GOOD,  # 2
        "{oops",  # 3
        "",  # 4 blank: ignored
        {"prompt": "p", "responses": ["one"]},  # 5
        {"prompt": "fine"},  # 6
        {"messages": [{"role": "wizard", "content": "hi"}]},  # 7
    )
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400
    data = response.json()
    assert data["detail"].startswith("4 lines are invalid")
    assert [e["line"] for e in data["errors"]] == [1, 3, 5, 7]
    assert ["empty" in data["errors"][0]["error"], "malformed JSON" in data["errors"][1]["error"]] == [True, True]
    assert counts() == seeded


def test_the_error_list_is_capped_and_says_how_many_more(client_for, admin, project, seeded, monkeypatch):
    monkeypatch.setattr(importers, "MAX_REPORTED_ERRORS", 3)
    response = upload(client_for(admin), project, jsonl(*["{bad"] * 5))
    assert response.status_code == 400
    data = response.json()
    assert [e["line"] for e in data["errors"]] == [1, 2, 3]
    assert "5 lines are invalid" in data["detail"] and "and 2 more" in data["detail"]
    assert data["errors_not_listed"] == 2
    assert counts() == seeded


def test_a_bad_line_after_written_batches_rolls_them_back(client_for, admin, project, seeded, monkeypatch):
    monkeypatch.setattr(importers, "BATCH_SIZE", 2)
    body = jsonl(*[{"prompt": f"Prompt {i}", "responses": ["a", "b"]} for i in range(7)], {"prompt": 7})
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 8, "error": "prompt must be a string"}]
    assert counts() == seeded


def test_a_duplicate_id_in_a_later_batch_is_caught(client_for, admin, project, seeded, monkeypatch):
    monkeypatch.setattr(importers, "BATCH_SIZE", 2)
    body = jsonl({"id": "a", "prompt": "1"}, {"id": "b", "prompt": "2"}, {"id": "c", "prompt": "3"},
                 {"id": "a", "prompt": "4"}, {"id": 7, "prompt": "5"}, {"id": "7", "prompt": "6"})
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["line"] for e in errors] == [4, 6]
    assert all("duplicate id" in e["error"] for e in errors)
    assert counts() == seeded


def test_a_duplicate_of_a_batch_sent_or_still_waiting_is_caught(client_for, admin, project, seeded, monkeypatch):
    # Batches of 2: line 3 repeats the batch still being encoded when its own is checked (memory),
    # line 7 one sent two batches before (the database, with a key from this import).
    monkeypatch.setattr(importers, "BATCH_SIZE", 2)
    body = jsonl({"id": "a", "prompt": "1"}, {"id": "b", "prompt": "2"}, {"id": "b", "prompt": "3"},
                 {"id": "c", "prompt": "4"}, {"id": "d", "prompt": "5"}, {"id": "e", "prompt": "6"},
                 {"id": "a", "prompt": "7"})
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": 3, "error": "duplicate id 'b' (also on line 2)"},
        {"line": 7, "error": "duplicate id 'a' (also on an earlier line)"},
    ]
    assert counts() == seeded


def test_duplicates_after_the_first_error_are_still_caught(client_for, admin, project, seeded, monkeypatch):
    monkeypatch.setattr(importers, "BATCH_SIZE", 2)
    body = jsonl({"prompt": ""}, {"id": "a", "prompt": "1"}, {"id": "b", "prompt": "2"}, {"id": "a", "prompt": "3"})
    response = upload(client_for(admin), project, body)
    assert [e["line"] for e in response.json()["errors"]] == [1, 4]
    assert counts() == seeded


def test_jsonl_import_creates_prompts_tasks_and_shuffled_responses(client_for, admin, project):
    body = jsonl(
        {"id": "q1", "prompt": "What is a prime?", "metadata": {"topic": "math"}},
        {"id": 42, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a **joke**."},
        ]},
        "",
        "   ",
        {"prompt": "Which is kinder?", "responses": ["Answer A", "Answer B", "Answer C"]},
    )
    response = upload(client_for(admin), project, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"created_prompts": 3, "created_tasks": 3, "skipped_existing": 0, **NO_CHANGES}

    q1 = Prompt.objects.get(project=project, external_id="q1")
    assert q1.messages == [{"role": "user", "content": "What is a prime?"}]
    assert q1.metadata == {"topic": "math"}
    chat = Prompt.objects.get(project=project, external_id="42")
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user"]
    hashed = Prompt.objects.get(project=project, messages__0__content="Which is kinder?")
    assert hashed.external_id.startswith("sha256:")

    tasks = {t.prompt_id: t for t in Task.objects.filter(project=project)}
    assert tasks[q1.pk].kind == Task.Kind.DEMONSTRATION and tasks[chat.pk].kind == Task.Kind.DEMONSTRATION
    assert {t.required for t in tasks.values()} == {2}
    assert {t.status for t in tasks.values()} == {Task.Status.OPEN}
    comparison = tasks[hashed.pk]
    assert comparison.kind == Task.Kind.COMPARISON
    links = list(comparison.task_responses.select_related("response"))
    assert sorted(link.position for link in links) == [0, 1, 2]
    assert sorted(link.response.text for link in links) == ["Answer A", "Answer B", "Answer C"]
    assert {link.response.source for link in links} == {Response.Source.IMPORT}
    assert {link.response.prompt_id for link in links} == {hashed.pk}
    assert not tasks[q1.pk].task_responses.exists()


def test_display_order_is_random_and_stored(client_for, admin, project):
    body = jsonl(*[{"prompt": f"Q{i}", "responses": ["r0", "r1", "r2", "r3"]} for i in range(30)])
    assert upload(client_for(admin), project, body).status_code == 200
    orders = set()
    for task in Task.objects.filter(project=project).prefetch_related("task_responses__response"):
        orders.add(tuple(link.response.text for link in task.task_responses.all()))
    # 30 shuffles of 4 all landing on one order has odds of 24**-29.
    assert len(orders) > 1


def test_reimport_creates_nothing_new(client_for, admin, project):
    body = jsonl({"id": "a", "prompt": "One"}, {"prompt": "No id"}, {"prompt": "Pick", "responses": ["x", "y"]})
    client = client_for(admin)
    assert upload(client, project, body).json() == {"created_prompts": 3, "created_tasks": 3, "skipped_existing": 0, **NO_CHANGES}
    before = counts()
    response = upload(client, project, body)
    assert response.status_code == 200
    assert response.json() == {"created_prompts": 0, "created_tasks": 0, "skipped_existing": 3, **NO_CHANGES}
    assert counts() == before
    # A file that adds to one imported before creates only the new lines.
    more = body + jsonl({"id": "b", "prompt": "Two"})
    assert upload(client, project, more).json() == {"created_prompts": 1, "created_tasks": 1, "skipped_existing": 3, **NO_CHANGES}


def test_same_ids_in_another_project_are_separate(client_for, admin, project):
    other = ProjectFactory()
    other_admin = member(other, role=Membership.Role.ADMIN)
    body = jsonl({"id": "a", "prompt": "One"})
    assert upload(client_for(admin), project, body).json()["created_prompts"] == 1
    assert upload(client_for(other_admin), other, body).json()["created_prompts"] == 1


def test_csv_import_with_numbered_response_columns(client_for, admin, project):
    body = (
        "id,prompt,response_1,response_2,response_3,metadata\r\n"
        'c1,"Write a haiku, please",first,second,third,"{""lang"": ""en""}"\r\n'
        "\r\n"
        'c2,"A prompt\nover two lines",,,,\r\n'
        "c3,Two of three,left,,right,\r\n"
    )
    response = upload(client_for(admin), project, body, name="prompts.csv")
    assert response.status_code == 200, response.content
    assert response.json() == {"created_prompts": 3, "created_tasks": 3, "skipped_existing": 0, **NO_CHANGES}
    c1 = Prompt.objects.get(external_id="c1")
    assert c1.messages == [{"role": "user", "content": "Write a haiku, please"}]
    assert c1.metadata == {"lang": "en"}
    c1_task = Task.objects.get(prompt=c1)
    assert c1_task.kind == Task.Kind.COMPARISON
    assert sorted(c1_task.responses.values_list("text", flat=True)) == ["first", "second", "third"]
    c2 = Prompt.objects.get(external_id="c2")
    assert c2.messages[0]["content"] == "A prompt\nover two lines"
    assert Task.objects.get(prompt=c2).kind == Task.Kind.DEMONSTRATION
    assert sorted(Task.objects.get(prompt__external_id="c3").responses.values_list("text", flat=True)) == [
        "left", "right"]
    # Re-import: nothing new.
    again = upload(client_for(admin), project, body, name="prompts.csv")
    assert again.json() == {"created_prompts": 0, "created_tasks": 0, "skipped_existing": 3, **NO_CHANGES}


def test_csv_import_with_a_responses_json_column_and_no_id(client_for, admin, project):
    body = 'prompt,responses\nPick one,"[""yes"", ""no""]"\nJust write,\n'
    response = upload(client_for(admin), project, body, name="prompts.csv")
    assert response.json() == {"created_prompts": 2, "created_tasks": 2, "skipped_existing": 0, **NO_CHANGES}
    task = Task.objects.get(prompt__messages__0__content="Pick one")
    assert sorted(task.responses.values_list("text", flat=True)) == ["no", "yes"]
    assert upload(client_for(admin), project, body, name="prompts.csv").json()["skipped_existing"] == 2


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("question,answer\nhi,there\n", 1, "no 'prompt' column"),
        ('prompt,responses\nok,\nPick,"[""a""]"\n', 3, "at least 2"),
        ("prompt,responses\nok,\nPick,[not json\n", 3, "responses is not valid JSON"),
        ("prompt,metadata\nok,\nPick,[1]\n", 3, "metadata must be a JSON object"),
        ("prompt,response_1,response_2\nok,,\nPick,only,\n", 3, "at least 2"),
        ("id,prompt\nok,first\n,\n ,\nx,\n", 5, "prompt is empty"),
        ("id,prompt\na,first\na,second\n", 3, "duplicate id 'a' (also on line 2)"),
        ("prompt\nfine\ntoo,many,cells\n", 3, "3 cells but the header names 1"),
        ('prompt,responses\nfine,\nP,"[""a"",""b""]"\n"x","[""a""]",\n', 4, "cells"),
        (b"prompt\nfine\ncaf\xe9\n", 3, "invalid UTF-8"),
        ('prompt,responses,response_1,response_2\nP,"[""a"",""b""]",c,d\n', 2, "not both"),
    ],
)
def test_csv_errors_name_the_line(client_for, admin, project, seeded, body, line, reason):
    response = upload(client_for(admin), project, body, name="prompts.csv")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert errors[0]["line"] == line
    assert reason in errors[0]["error"]
    assert counts() == seeded


def test_format_comes_from_the_name_or_is_sniffed(client_for, admin, project):
    client = client_for(admin)
    as_jsonl = jsonl({"id": "j", "prompt": "From JSON"})
    assert upload(client, project, as_jsonl, name="upload.txt").json()["created_prompts"] == 1
    assert upload(client, project, "id,prompt\ns,From CSV\n", name="upload").json()["created_prompts"] == 1
    assert Prompt.objects.get(external_id="s").messages[0]["content"] == "From CSV"
    # A BOM and CRLF line ends are fine.
    bom = "\ufeff" + jsonl({"id": "bom", "prompt": "BOM"}).replace("\n", "\r\n")
    assert upload(client, project, bom.encode("utf-8"), name="x.jsonl").json()["created_prompts"] == 1
    assert Prompt.objects.get(external_id="bom").messages[0]["content"] == "BOM"


def test_an_empty_file_or_no_file_is_a_400(client_for, admin, project):
    client = client_for(admin)
    empty = upload(client, project, "\n\n")
    assert empty.status_code == 400 and empty.json()["field"] == "file"
    missing = client.post(f"/api/projects/{project.pk}/import/", {}, format="multipart")
    assert missing.status_code == 400 and missing.json()["field"] == "file"
    assert counts() == (0, 0, 0, 0)


def test_labelers_get_403_and_strangers_404(client_for, project):
    body = jsonl({"prompt": "Sneaky"})
    assert upload(client_for(member(project)), project, body).status_code == 403
    assert upload(client_for(UserFactory()), project, body).status_code == 404
    assert counts() == (0, 0, 0, 0)


def test_import_prompts_command(project, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl({"id": "a", "prompt": "One"}, {"prompt": "Two", "responses": ["x", "y"]}))
    out = StringIO()
    call_command("import_prompts", project.slug, str(good), stdout=out)
    assert "Created 2 prompts and 2 tasks; skipped 0" in out.getvalue()

    bad = tmp_path / "bad.data"
    bad.write_text("prompt,id\nfine,1\n,2\n")
    err = StringIO()
    with pytest.raises(CommandError, match="1 line is invalid"):
        call_command("import_prompts", project.slug, str(bad), "--format", "csv", stderr=err)
    assert "line 3: prompt is empty" in err.getvalue()
    assert Prompt.objects.count() == 2

    with pytest.raises(CommandError, match="No project"):
        call_command("import_prompts", "no-such-project", str(good))


def test_the_bundled_demo_prompts_import_cleanly(client_for, admin, project):
    from django.conf import settings

    content = (settings.BASE_DIR / "data" / "demo_prompts.jsonl").read_bytes()
    response = upload(client_for(admin), project, content, name="demo_prompts.jsonl")
    assert response.status_code == 200, response.content
    assert response.json()["created_prompts"] == 40
    assert Task.objects.filter(project=project, kind=Task.Kind.COMPARISON).count() == 15
    assert Task.objects.filter(project=project, kind=Task.Kind.DEMONSTRATION).count() == 25
    shown = {t.task_responses.count() for t in Task.objects.filter(kind=Task.Kind.COMPARISON)}
    assert shown == {2, 3, 4}


@pytest.mark.parametrize("gold", [None, {"ranking": [[1], [0]], "explanation": "Ünïcode\twith\\ escapes"}])
def test_the_content_id_is_the_hash_of_the_sorted_json_it_always_was(gold):
    import hashlib

    messages = [{"role": "system", "content": "Be brief.\n"}, {"role": "user", "content": "Ça va? \"quoted\" \u2028"}]
    responses = ["Oui.", "Non\\n."]
    content = {"messages": messages, "responses": responses, **({"gold": gold} if gold else {})}
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True)
    expected = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]
    assert importers._content_id(messages, responses, gold) == expected
    given = importers._canonical_json(messages)
    assert importers._content_id(messages, responses, gold, messages_json=given) == expected


def test_a_line_without_an_id_stores_its_messages_as_given(client_for, admin, project):
    messages = [{"role": "system", "content": "Tabs\there,\nnewlines, a \\ and \u00e9"},
                {"role": "user", "content": "Why \"quotes\" and \r returns?"}]
    response = upload(client_for(admin), project, jsonl({"messages": messages, "responses": ["a\tb", "c\\d"]}))
    assert response.status_code == 200, response.json()
    prompt = Prompt.objects.get(project=project)
    assert prompt.messages == messages and prompt.external_id.startswith("sha256:")
    assert sorted(Response.objects.filter(prompt=prompt).values_list("text", flat=True)) == ["a\tb", "c\\d"]


def test_the_foreign_keys_are_deferred_again_after_an_import(project, monkeypatch):
    # The import checks its batches' keys per statement; the rest of the transaction expects them at commit.
    from io import BytesIO

    from django.db import IntegrityError, connection, transaction

    monkeypatch.setattr(importers, "BATCH_SIZE", 2)
    body = jsonl(*[{"prompt": f"Prompt {i}", "responses": ["a", "b"]} for i in range(5)]).encode()
    with transaction.atomic():
        result = importers.prompts_import(project=project, fileobj=BytesIO(body), filename="p.jsonl")
        assert result.created_tasks == 5
        with connection.cursor() as cursor:
            # A child before its parent passes while the keys are deferred; checked per statement it would not.
            cursor.execute("INSERT INTO annotation_response (prompt_id, text, source, created_at, updated_at) "
                           "SELECT max(id) + 1000, 'x', 'import', now(), now() FROM annotation_prompt RETURNING id")
            orphan = cursor.fetchone()[0]
            cursor.execute("DELETE FROM annotation_response WHERE id = %s", [orphan])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("INSERT INTO annotation_response (prompt_id, text, source, created_at, updated_at) "
                       "SELECT max(id) + 1000, 'x', 'import', now(), now() FROM annotation_prompt")


def test_a_byte_order_mark_past_the_first_line_is_named(client_for, admin, project):
    body = jsonl({"id": "a", "prompt": "1"}) + "\ufeff" + jsonl({"id": "b", "prompt": "2"})
    response = upload(client_for(admin), project, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": 2, "error": "malformed JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at column 1"}
    ]
