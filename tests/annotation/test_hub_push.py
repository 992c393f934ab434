"""Pushing a dataset export to the Hugging Face Hub: checked in the request, uploaded by a real Celery worker.

The Hub cannot exist here: the tests run with HF_HUB_OFFLINE=1, so a real push fails as an unreachable
Hub does, and the one successful push talks to a stand-in for huggingface_hub's HfApi.
"""

import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotation import dataset_push, hub_push
from annotation.models import HubPush, Membership
from tests.annotation.test_hf_dataset import labelled  # noqa: F401 (a fixture)
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member

TOKEN = "hf_secretTokenValue123"


@pytest.fixture
def project(db):
    return ProjectFactory(name="Helpful answers", slug="helpful")


@pytest.fixture
def engineer(project):
    return member(project, role=Membership.Role.ENGINEER, username="erin")


def push_body(**extra):
    return {"repo_id": "my-org/helpful-prefs", "token": TOKEN, "format": "preference", "license": "mit", **extra}


def wait_final(api, push_id, worker, seconds=120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        body = api.get(f"/api/hub-pushes/{push_id}/").json()
        if body["status"] in ("succeeded", "failed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"push still {body['status']}\n{worker.log_path.read_text()[-4000:]}")
        time.sleep(0.25)


@pytest.mark.django_db(transaction=True)
def test_with_the_hub_unreachable_the_worker_records_a_clear_failure(celery_worker_process, project, engineer,
                                                                      labelled):  # noqa: F811
    api = api_client_for(engineer)
    started = api.post(f"/api/projects/{project.pk}/hub-pushes/", push_body(), format="json")
    assert started.status_code == 202, started.content
    assert started.json()["status"] == "queued" and "token" not in started.json()

    body = wait_final(api, started.json()["id"], celery_worker_process)
    assert body["status"] == "failed"
    assert body["error"].startswith("The Hugging Face Hub could not be reached: ")
    assert body["url"] == "" and body["rows"] is None
    push = HubPush.objects.get(pk=body["id"])
    stored = " ".join(str(value) for value in HubPush.objects.filter(pk=push.pk).values().first().values())
    assert TOKEN not in stored
    assert TOKEN not in celery_worker_process.log_path.read_text()
    assert "hub_push_dataset" in celery_worker_process.log_path.read_text()
    assert cache.get(hub_push._token_key(push.pk)) is None  # taken once, by the worker
    listed = api.get(f"/api/projects/{project.pk}/hub-pushes/").json()
    assert [row["id"] for row in listed] == [push.pk]


def test_a_refused_connection_is_unreachable_too(project, engineer, labelled, monkeypatch):  # noqa: F811
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    push = dataset_push.dataset_push_start(project=project, fmt="sft", filters=hub_push_filters(), license=None,
                                           repo_id="me/data", token=TOKEN, private=True, created_by=engineer)
    assert dataset_push.dataset_push_run(push_id=push.pk) == "failed"
    push.refresh_from_db()
    assert push.error.startswith("The Hugging Face Hub could not be reached: ") and TOKEN not in push.error
    assert push.finished_at is not None


def hub_push_filters():
    from annotation.export_filters import ExportFilters

    return ExportFilters()


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records what would be created and uploaded."""

    calls: list = []
    uploaded: dict = {}

    def __init__(self, token=None, **kwargs):
        self.token = token

    def create_repo(self, repo_id, *, repo_type, private, exist_ok):
        FakeHub.calls.append(("create_repo", repo_id, repo_type, private, exist_ok, self.token))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, *, repo_id, repo_type, folder_path, commit_message):
        from pathlib import Path

        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        FakeHub.calls.append(("upload_folder", repo_id, repo_type, files))
        FakeHub.uploaded = {name: (Path(folder_path) / name).read_bytes() for name in files}


def test_a_push_the_hub_accepts_uploads_the_directory_and_succeeds(project, engineer, labelled, monkeypatch):  # noqa: F811
    import huggingface_hub

    FakeHub.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    push = dataset_push.dataset_push_start(project=project, fmt="preference", filters=hub_push_filters(),
                                           license="mit", repo_id="my-org/helpful-prefs", token=TOKEN,
                                           private="false", created_by=engineer)
    assert dataset_push.dataset_push_run(push_id=push.pk) == "succeeded"
    assert dataset_push.dataset_push_run(push_id=push.pk) == "skipped"  # a second delivery uploads nothing
    assert FakeHub.calls == [
        ("create_repo", "my-org/helpful-prefs", "dataset", False, True, TOKEN),
        ("upload_folder", "my-org/helpful-prefs", "dataset", ["README.md", "data/train-00000-of-00001.parquet"]),
    ]
    push.refresh_from_db()
    assert (push.status, push.rows, push.error) == ("succeeded", 3, "")
    assert push.url == "https://huggingface.co/datasets/my-org/helpful-prefs"


@pytest.mark.parametrize("body, field", [
    (push_body(repo_id="no-slash"), "repo_id"),
    (push_body(repo_id="a/b/c"), "repo_id"),
    (push_body(repo_id="bad--/name..x"), "repo_id"),
    (push_body(repo_id=""), "repo_id"),
    (push_body(token=""), "token"),
    (push_body(token="two words"), "token"),
    (push_body(format="raw"), "format"),
    (push_body(license="MIT License"), "license"),
    (push_body(private="maybe"), "private"),
])
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(project, engineer, labelled, body, field):  # noqa: F811
    response = api_client_for(engineer).post(f"/api/projects/{project.pk}/hub-pushes/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not HubPush.objects.exists()


def test_only_the_projects_admins_and_engineers_may_push_or_see_pushes(project, engineer, labelled):  # noqa: F811
    ann, _ = labelled
    url = f"/api/projects/{project.pk}/hub-pushes/"
    assert api_client_for(ann).post(url, push_body(), format="json").status_code == 403
    outsider = member(ProjectFactory(), role=Membership.Role.ADMIN)
    assert api_client_for(outsider).post(url, push_body(), format="json").status_code == 404
    assert not HubPush.objects.exists()
    started = api_client_for(engineer).post(url, push_body(), format="json")
    assert started.status_code == 202
    detail = f"/api/hub-pushes/{started.json()['id']}/"
    assert api_client_for(ann).get(detail).status_code == 404
    assert api_client_for(outsider).get(detail).status_code == 404
    assert api_client_for(ann).get(url).status_code == 403


def test_the_export_page_pushes_and_shows_the_status_or_the_error(client, project, engineer, labelled):  # noqa: F811
    client.force_login(engineer)
    url = reverse("project-hub-push", args=[project.pk])
    bad = client.post(url, {"repo_id": "nope", "token": TOKEN, "format": "sft", "license": "other"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert 'id="push-error" data-field="repo_id"' in html and TOKEN not in html
    assert not HubPush.objects.exists()

    good = client.post(url, {"repo_id": "me/helpful-sft", "token": TOKEN, "format": "sft", "license": "other"})
    assert good.status_code == 302
    push = HubPush.objects.get()
    assert (push.repo_id, push.format, push.private) == ("me/helpful-sft", "sft", False)
    HubPush.objects.filter(pk=push.pk).update(status="failed", error="The Hugging Face Hub could not be reached: x")
    page = client.get(reverse("project-export", args=[project.pk])).content.decode()
    assert 'id="hub-pushes"' in page and 'data-status="failed"' in page
    assert "The Hugging Face Hub could not be reached: x" in page
    assert f"/api/projects/{project.pk}/export/dataset/" in page


def test_django_admin_lists_pushes_without_a_way_to_add_one(client, project, engineer):
    from tests.factories import UserFactory

    HubPush.objects.create(kind="dataset", project=project, repo_id="me/data", format="sft", status="failed",
                           error="The Hugging Face Hub could not be reached: offline")
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    page = client.get("/admin/annotation/hubpush/")
    assert page.status_code == 200 and "me/data" in page.content.decode()
    assert client.get("/admin/annotation/hubpush/add/").status_code == 403


def test_since_last_export_applies_to_the_dataset_export(client_for, project, engineer, labelled):  # noqa: F811
    from annotation.models import ExportRecord
    from django.utils import timezone

    ExportRecord.objects.create(project=project, format="sft", rows=2, started_at=timezone.now())
    response = client_for(engineer).get(f"/api/projects/{project.pk}/export/dataset/",
                                        {"format": "sft", "since_last_export": "true"})
    assert response.status_code == 400 and "keeps no rows with these filters" in response.json()["detail"]
