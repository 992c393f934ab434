"""Import limits: the file's size (413 on the API, a message on the page), the error list's length,
and memory that stays flat however bad a file is."""

import io
import json
import os
import subprocess
import sys
import tracemalloc
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation import importers, read_ahead
from annotation.errors import InvalidInput, PayloadTooLarge
from annotation.models import Membership, Prompt
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


def jsonl(*objects) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects).encode()


def upload_api(client, project, content: bytes, **fields):
    files = {"file": SimpleUploadedFile("prompts.jsonl", content), **fields}
    return client.post(f"/api/projects/{project.pk}/import/", files, format="multipart")


def good_file(size: int) -> bytes:
    """Valid lines adding up to at least `size` bytes."""
    lines, total, i = [], 0, 0
    while total < size:
        line = json.dumps({"id": f"p{i}", "prompt": f"Prompt number {i}, padded to be longer."}) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()


# Size ------------------------------------------------------------------------------------------------


def test_a_file_over_the_import_limit_is_a_413_naming_the_limit(client_for, admin, project, settings):
    settings.IMPORT_MAX_BYTES = 4096
    response = upload_api(client_for(admin), project, good_file(5000))
    assert response.status_code == 413
    body = response.json()
    assert body["field"] == "file" and body["limit_bytes"] == 4096
    assert "limit of 4 KiB (4096 bytes)" in body["detail"]
    assert not Prompt.objects.exists()
    assert upload_api(client_for(admin), project, good_file(3000)).status_code == 200


def test_an_upload_far_over_the_limit_is_refused_before_it_is_read(client_for, admin, project, settings):
    """Past the limit plus the multipart envelope the Content-Length alone decides: 413 before parsing."""
    settings.IMPORT_MAX_BYTES = 4096
    response = upload_api(client_for(admin), project, good_file(2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["field"] == "file" and response.json()["limit_bytes"] == 4096
    assert not Prompt.objects.exists()


def test_the_import_limit_beats_the_body_limit_for_import_uploads_only(client_for, admin, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    client = client_for(admin)
    imported = upload_api(client, project, good_file(8192))
    assert imported.status_code == 200 and imported.json()["created_prompts"] > 50
    elsewhere = client.post(f"/api/projects/{project.pk}/members/", {"username": "x" * 8192}, format="multipart")
    assert elsewhere.status_code == 413 and elsewhere.json()["limit_bytes"] == 2048


def test_the_import_page_says_the_file_is_too_large(client, admin, project, settings):
    settings.IMPORT_MAX_BYTES = 4096
    client.force_login(admin)
    response = client.post(f"/projects/{project.pk}/import/", {"file": SimpleUploadedFile("big.jsonl", good_file(5000))})
    assert response.status_code == 413
    page = response.content.decode()
    assert "Nothing was imported" in page and "larger than the limit of 4 KiB" in page
    assert "Files up to 4 KiB" in page
    far = client.post(f"/projects/{project.pk}/import/", {"file": SimpleUploadedFile("x.jsonl", good_file(2 << 20))})
    assert far.status_code == 413 and "larger than the limit of 4 KiB" in far.content.decode()
    assert not Prompt.objects.exists()


def test_a_file_of_unknown_size_is_stopped_while_reading(project):
    """A stream without a size (a chunked upload, a pipe) is counted as it is read."""
    with pytest.raises(PayloadTooLarge) as error:
        importers.prompts_import(project=project, fileobj=io.BytesIO(good_file(300_000)), max_bytes=100_000)
    assert error.value.limit == 100_000
    assert not Prompt.objects.exists()


def _import_limit_in_a_fresh_process(**env) -> str:
    code = "import django; django.setup(); from django.conf import settings; print(settings.IMPORT_MAX_BYTES)"
    environment = {k: v for k, v in os.environ.items() if k != "FEEDBACKLOOP_IMPORT_MAX_BYTES"}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.test", **env)
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_limit_comes_from_the_environment():
    assert _import_limit_in_a_fresh_process() == str(256 * 1024 * 1024)
    assert _import_limit_in_a_fresh_process(FEEDBACKLOOP_IMPORT_MAX_BYTES="12345") == "12345"


# The error list --------------------------------------------------------------------------------------


def test_5000_bad_lines_list_1000_errors_and_4000_more(client, client_for, admin, project, tmp_path):
    bad = jsonl(*[{"prompt": ""}] * 5000)
    response = upload_api(client_for(admin), project, bad)
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == 1000
    assert [e["line"] for e in body["errors"]] == list(range(1, 1001))
    assert body["errors_not_listed"] == 4000
    assert body["detail"] == "5000 lines are invalid; the first 1000 are listed, and 4000 more. Nothing was imported."

    client.force_login(admin)
    page = client.post(f"/projects/{project.pk}/import/", {"file": SimpleUploadedFile("bad.jsonl", bad)}).content.decode()
    assert page.count('<td class="num">') == 1000 and "and 4000 more" in page

    path = tmp_path / "bad.jsonl"
    path.write_bytes(bad)
    err = StringIO()
    with pytest.raises(CommandError, match="and 4000 more"):
        call_command("import_prompts", project.slug, str(path), stderr=err)
    assert err.getvalue().count("\n") == 1001 and err.getvalue().endswith("and 4000 more\n")
    assert not Prompt.objects.exists()


def _peak_bytes(project, lines: int) -> int:
    """Peak Python allocations importing a bad first line, then `lines` good ones, then `lines` bad ones."""
    good = [json.dumps({"id": f"id-{i}", "prompt": f"Prompt {i}"}) for i in range(lines)]
    content = ("\n".join(['{"prompt": ""}', *good, *["{bad"] * lines]) + "\n").encode()
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as error:
            importers.prompts_import(project=project, fileobj=io.BytesIO(content), filename="bad.jsonl")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert error.value.extra["errors_not_listed"] == lines + 1 - importers.MAX_REPORTED_ERRORS


def test_memory_stays_flat_as_a_bad_file_grows(project, monkeypatch):
    """Neither the bad lines nor the ids after the first error are held: three times the lines, not more memory.

    (The importer used to keep every reported line number and every id after the first error.)
    """
    monkeypatch.setattr(importers, "MAX_REPORTED_ERRORS", 10)
    monkeypatch.setattr(importers, "BATCH_SIZE", 100)
    # Lines read ahead of the writer are a bound of their own (CHUNK x DEPTH events), like the batch:
    # keep it small here too, so the smaller file already fills it.
    monkeypatch.setattr(read_ahead, "CHUNK", 16)
    monkeypatch.setattr(read_ahead, "DEPTH", 2)
    small = _peak_bytes(project, 1500)  # past RECENT_LINES, so the window of recent lines is full already
    large = _peak_bytes(ProjectFactory(), 4500)
    assert large < small * 1.1, (small, large)
    assert not Prompt.objects.exists()
