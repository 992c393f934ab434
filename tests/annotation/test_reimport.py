"""Re-importing a file that changed: changed lines are reported; update mode replaces what nobody depends on."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Annotation, Lease, Membership, Prompt, Response, Task
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db

FIRST = [
    {"id": "same", "prompt": "Unchanged?"},
    {"id": "msg", "prompt": "Old question?"},
    {"id": "resp", "prompt": "Pick one", "responses": ["old A", "old B"]},
    {"id": "meta", "prompt": "Tagged?", "metadata": {"topic": "old"}},
]
SECOND = [
    {"id": "same", "prompt": "Unchanged?"},
    {"id": "msg", "prompt": "New question?"},
    {"id": "resp", "prompt": "Pick one", "responses": ["new A", "new B", "new C"]},
    {"id": "meta", "prompt": "Tagged?", "metadata": {"topic": "new"}},
    {"id": "fresh", "prompt": "Brand new?"},
]


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


@pytest.fixture
def api(client_for, admin):
    return client_for(admin)


def jsonl(lines) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(api, project, lines, **fields):
    files = {"file": SimpleUploadedFile("prompts.jsonl", jsonl(lines)), **fields}
    return api.post(f"/api/projects/{project.pk}/import/", files, format="multipart")


def content(project) -> dict:
    """{external id: (messages' text, sorted response texts of its tasks, metadata, task kinds)}."""
    out = {}
    for prompt in Prompt.objects.filter(project=project):
        tasks = Task.objects.filter(prompt=prompt)
        texts = sorted(Response.objects.filter(tasks__in=tasks).values_list("text", flat=True))
        out[prompt.external_id] = (
            [m["content"] for m in prompt.messages], texts, prompt.metadata, sorted(t.kind for t in tasks)
        )
    return out


@pytest.fixture
def imported(api, project):
    assert upload(api, project, FIRST).status_code == 200
    return content(project)


def test_changed_lines_are_reported_and_kept(api, project, imported):
    response = upload(api, project, SECOND)
    assert response.status_code == 200
    result = response.json()
    assert (result["created_prompts"], result["skipped_existing"], result["changed_kept"], result["updated_prompts"]) == (
        1, 4, 3, 0)
    assert [note["message"] for note in result["notes"]] == [
        "line 2: id 'msg' changed since it was first imported; kept the original",
        "line 3: id 'resp' changed since it was first imported; kept the original",
        "line 4: id 'meta' changed since it was first imported; kept the original",
    ]
    assert [(note["line"], note["id"]) for note in result["notes"]] == [(2, "msg"), (3, "resp"), (4, "meta")]
    after = content(project)
    assert {k: v for k, v in after.items() if k != "fresh"} == imported


def test_the_page_and_the_command_report_changed_lines(client, admin, project, imported, tmp_path):
    client.force_login(admin)
    page = client.post(f"/projects/{project.pk}/import/", {"file": SimpleUploadedFile("p.jsonl", jsonl(SECOND))})
    assert page.status_code == 200
    html = page.content.decode()
    assert "line 2: id &#x27;msg&#x27; changed since it was first imported; kept the original" in html
    assert 'data-count="changed_kept">3<' in html and "Replace changed prompts" in html

    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(SECOND))
    out = StringIO()
    call_command("import_prompts", project.slug, str(path), stdout=out)
    assert "line 4: id 'meta' changed since it was first imported; kept the original" in out.getvalue()
    assert "3 changed lines kept the original (--update replaces them" in out.getvalue()
    assert content(project)["msg"] == imported["msg"]


def test_update_mode_replaces_changed_prompts(api, project, imported):
    before = {p.external_id: p.pk for p in Prompt.objects.filter(project=project)}
    meta_task = Task.objects.get(prompt__external_id="meta").pk
    response = upload(api, project, SECOND, mode="update")
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["created_prompts"], result["updated_prompts"], result["changed_kept"], result["notes"]) == (
        1, 3, 0, [])
    assert result["skipped_existing"] == 1  # "same"
    after = content(project)
    assert after["msg"][0] == ["New question?"]
    assert after["resp"][1] == ["new A", "new B", "new C"] and after["resp"][3] == ["comparison"]
    assert after["meta"][2] == {"topic": "new"}
    assert after["same"] == imported["same"]
    # The prompts keep their ids; only a task whose responses changed is made anew.
    assert {p.external_id: p.pk for p in Prompt.objects.filter(project=project) if p.external_id != "fresh"} == before
    assert Task.objects.get(prompt__external_id="meta").pk == meta_task
    assert not Response.objects.filter(text__startswith="old").exists()
    shown = Task.objects.get(prompt__external_id="resp").task_responses.values_list("position", flat=True)
    assert sorted(shown) == [0, 1, 2]


def test_update_mode_keeps_prompts_that_labelers_depend_on(api, project, imported):
    labeler = member(project)
    resp_task = Task.objects.get(prompt__external_id="resp")
    Annotation.objects.create(task=resp_task, labeler=labeler, kind=Annotation.Kind.SKIP, reason="unsure")
    msg_task = Task.objects.get(prompt__external_id="msg")
    Lease.objects.create(task=msg_task, labeler=labeler, project=project, expires_at=timezone.now() - timedelta(hours=1))
    meta_prompt = Prompt.objects.get(external_id="meta")
    Response.objects.create(prompt=meta_prompt, text="generated", source=Response.Source.MODEL)

    response = upload(api, project, SECOND, mode="update")
    assert response.status_code == 200
    result = response.json()
    assert (result["updated_prompts"], result["changed_kept"]) == (0, 3)
    assert [note["message"] for note in result["notes"]] == [
        "line 2: id 'msg' changed since it was first imported; kept the original because a labeler has opened it",
        "line 3: id 'resp' changed since it was first imported; kept the original because it is annotated",
        "line 4: id 'meta' changed since it was first imported; kept the original because model responses were "
        "generated for it",
    ]
    after = content(project)
    assert after["msg"] == imported["msg"] and after["resp"] == imported["resp"]
    assert after["meta"][2] == imported["meta"][2]
    assert Annotation.objects.filter(task=resp_task).count() == 1 and Lease.objects.filter(task=msg_task).exists()


def test_update_mode_can_turn_a_comparison_into_a_demonstration(api, project, imported):
    lines = [{"id": "resp", "prompt": "Pick one"}]
    assert upload(api, project, lines, mode="update").json()["updated_prompts"] == 1
    assert content(project)["resp"][1:] == ([], {}, ["demonstration"])


def test_update_mode_is_atomic(api, project, imported):
    response = upload(api, project, [*SECOND, {"id": "broken", "prompt": ""}], mode="update")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 6, "error": "prompt is empty"}]
    assert content(project) == imported


def test_an_unknown_mode_is_a_400(api, project, imported):
    response = upload(api, project, SECOND, mode="replace-all")
    assert response.status_code == 400 and response.json()["field"] == "mode"
    assert content(project) == imported


def test_the_page_checkbox_and_the_command_flag_update(client, admin, project, imported, tmp_path):
    client.force_login(admin)
    page = client.post(
        f"/projects/{project.pk}/import/", {"file": SimpleUploadedFile("p.jsonl", jsonl(SECOND[:2])), "update": "on"}
    )
    assert page.status_code == 200 and 'data-count="updated_prompts">1<' in page.content.decode()
    assert content(project)["msg"][0] == ["New question?"]

    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(SECOND))
    out = StringIO()
    call_command("import_prompts", project.slug, str(path), "--update", stdout=out)
    assert "2 changed prompts replaced; 0 changed lines kept the original." in out.getvalue()
    assert content(project)["resp"][1] == ["new A", "new B", "new C"]


def test_notes_are_capped_like_errors(api, project, monkeypatch):
    from annotation import importers

    monkeypatch.setattr(importers, "MAX_REPORTED_ERRORS", 2)
    upload(api, project, [{"id": f"p{i}", "prompt": "v1"} for i in range(5)])
    result = upload(api, project, [{"id": f"p{i}", "prompt": "v2"} for i in range(5)]).json()
    assert [note["line"] for note in result["notes"]] == [1, 2]
    assert result["notes_not_listed"] == 3 and result["changed_kept"] == 5
