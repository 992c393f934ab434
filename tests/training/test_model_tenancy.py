"""Models belong to projects: registration by path, and another project's model on every path.

Tried as the attacker would: an engineer of project A registers project B's run output (run ids
are sequential), or any directory of the server, then trains or samples from it. Every refusal
must read exactly like a path that does not exist, so the registry is no filesystem oracle.
"""

import os
import re
import shutil

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from annotation.models import Membership, Project
from tests.factories import ProjectFactory, PromptFactory, UserFactory, member, model_version
from tests.training.labels import demonstrations_create
from training import registry
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def roots(tmp_path, settings):
    """A model root holding one real model folder, and the platform's storage with another project's run."""
    root = tmp_path / "models"
    (root / "llama-7b").mkdir(parents=True)
    (root / "llama-7b" / "config.json").write_text("{}")
    settings.MODEL_ROOTS = [str(root)]
    victim_output = settings.STORAGE_ROOT / "runs" / "7" / "model"
    victim_output.mkdir(parents=True, exist_ok=True)
    (victim_output / "config.json").write_text("{}")
    return root, victim_output


@pytest.fixture
def project():
    return ProjectFactory(slug="mine")


@pytest.fixture
def engineer(project):
    return member(project, Membership.Role.ENGINEER, username="eve")


def register(client, project, path, name="grab"):
    return client.post("/api/models/", {"name": name, "kind": "sft", "path": path, "project": project.pk},
                       format="json")


def _without_path(body: dict, path: str) -> dict:
    return {**body, "detail": body["detail"].replace(repr(path), "<path>")}


def test_every_refused_path_reads_like_a_missing_one(client_for, project, engineer, roots, tmp_path, settings):
    root, victim_output = roots
    client = client_for(engineer)
    (root / "escape").symlink_to(victim_output)  # a link inside the root that points into the storage
    (root / "outside").symlink_to(tmp_path)
    missing = str(root / "no-such-model")
    refused = [
        missing,
        str(victim_output),  # another project's run output, absolute
        "runs/7/model",  # the same, as the platform stores it
        f"{root}/../../etc",
        str(root / ".." / "models" / ".." / ".."),  # `..` out of the root
        str(root / "escape"),
        str(root / "outside"),
        str(settings.STORAGE_ROOT),
        "/etc",
        "/",
        "../../etc/passwd",
        "training/pipelines",  # a folder of the platform's own, spelled like a hub id
    ]
    first = register(client, project, missing)
    assert first.status_code == 400 and first.json()["field"] == "path"
    expected = _without_path(first.json(), missing)
    for path in refused:
        response = register(client, project, path)
        assert response.status_code == 400, (path, response.content)
        assert _without_path(response.json(), path) == expected, path
    assert not ModelVersion.objects.filter(name="grab").exists()


def test_a_directory_under_a_root_and_a_hub_id_register(client_for, project, engineer, roots):
    root, _ = roots
    client = client_for(engineer)
    local = register(client, project, str(root / "llama-7b" / ".." / "llama-7b"), name="llama")
    assert local.status_code == 201, local.content
    assert local.json()["source"] == "local" and local.json()["path"] == str((root / "llama-7b").resolve())
    hub = register(client, project, "meta-llama/Llama-3-8B", name="hub-llama")
    assert hub.status_code == 201 and hub.json()["source"] == "hub"
    model = ModelVersion.objects.get(name="hub-llama")
    # A hub id is never looked up in the platform's storage, even when a folder there has its name.
    assert registry.model_location(model) == "meta-llama/Llama-3-8B"
    run_like = register(client, project, "runs/7", name="run-like")
    assert run_like.status_code == 201
    assert registry.model_location(ModelVersion.objects.get(name="run-like")) == "runs/7"


def test_only_superusers_register_global_models(client_for, project, engineer, roots):
    body = {"name": "global", "kind": "base", "path": "org/base"}
    refused = client_for(engineer).post("/api/models/", body, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "project"
    root = UserFactory(is_superuser=True, is_staff=True)
    made = client_for(root).post("/api/models/", body, format="json")
    assert made.status_code == 201 and made.json()["project"] is None


def test_labelers_read_nothing_of_the_registry(client, client_for, project, roots):
    ModelVersion.objects.create(name="secret-sft", kind="sft", path="runs/1/model", project=project)
    labeler = member(project)
    api = client_for(labeler)
    listed = api.get("/api/models/")
    assert listed.status_code == 403 and "secret-sft" not in listed.content.decode()
    assert register(api, project, "org/x").status_code == 403
    client.force_login(labeler)
    page = client.get("/training/models/")
    assert page.status_code == 403 and "secret-sft" not in page.content.decode()


# Another project's model, on every path ----------------------------------------------------------------


@pytest.fixture
def theirs():
    return ModelVersion.objects.create(name="theirs-sft", kind="sft", path="runs/7/model", project=ProjectFactory())


@pytest.fixture
def queued(monkeypatch):
    sent = []
    for task in ("training.tasks.run_execute", "loop.tasks.generation_execute"):
        monkeypatch.setattr(f"{task}.apply_async", lambda args=None, **kw: sent.append(args), raising=False)
        monkeypatch.setattr(f"{task}.delay", lambda *args, **kw: sent.append(args), raising=False)
    return sent


def test_a_run_with_another_projects_model_is_a_400_on_api_page_and_cli(client, client_for, project, engineer,
                                                                        theirs, queued):
    demonstrations_create(project=project, n=2)
    missing = client_for(engineer).post("/api/training-runs/", {
        "kind": "sft", "project": project.pk, "base_model": 10**9, "config": {}}, format="json")
    api = client_for(engineer).post("/api/training-runs/", {
        "kind": "sft", "project": project.pk, "base_model": theirs.pk, "config": {}}, format="json")
    assert api.status_code == 400 and api.json()["field"] == "base_model"
    assert api.json()["detail"].replace(str(theirs.pk), "N") == missing.json()["detail"].replace(str(10**9), "N")
    client.force_login(engineer)
    page = client.post("/training/runs/new/", {"kind": "sft", "project": project.pk, "base_model": theirs.pk})
    assert page.status_code == 400
    with pytest.raises(CommandError, match="base_model"):
        call_command("train", "--kind", "sft", "--project", "mine", "--base", "theirs-sft", "--no-follow")
    assert not TrainingRun.objects.exists() and queued == []


def test_an_rlhf_run_with_another_projects_reward_model_is_a_400(client_for, project, engineer, queued):
    base = ModelVersion.objects.create(name="base", kind="base", path="models/tiny")
    rm = ModelVersion.objects.create(name="their-rm", kind="reward", path="runs/8/model", project=ProjectFactory())
    PromptFactory(project=project)
    response = client_for(engineer).post("/api/training-runs/", {
        "kind": "rlhf", "project": project.pk, "base_model": base.pk, "reward_model": rm.pk, "config": {}},
        format="json")
    assert response.status_code == 400 and response.json()["field"] == "reward_model"
    assert not TrainingRun.objects.exists()


def test_generation_evaluation_and_active_sampling_refuse_another_projects_model(
    client, client_for, project, engineer, theirs, queued
):
    from training.models import Evaluation, GenerationJob

    PromptFactory.create_batch(3, project=project)
    mine = ModelVersion.objects.create(name="mine-sft", kind="sft", path="runs/2/model", project=project)
    api = client_for(engineer)
    generate = api.post(f"/api/projects/{project.pk}/generate/", {
        "model_version": theirs.pk, "k": 2, "prompt_count": 1}, format="json")
    assert generate.status_code == 400 and generate.json()["field"] == "model_version"
    evaluate = api.post("/api/evaluations/", {
        "project": project.pk, "model_a": mine.pk, "model_b": theirs.pk, "prompt_count": 2}, format="json")
    assert evaluate.status_code == 400 and evaluate.json()["field"] == "model_b"
    their_rm = ModelVersion.objects.create(name="their-rm", kind="reward", path="runs/9/model",
                                           project=ProjectFactory())
    admin = member(project, Membership.Role.ADMIN)
    patch = client_for(admin).patch(f"/api/projects/{project.pk}/", {"reward_model": their_rm.pk}, format="json")
    assert patch.status_code == 400 and "reward_model" in patch.json()
    client.force_login(engineer)
    page = client.post("/training/generation/new/", {
        "project": project.pk, "model": theirs.pk, "k": 2, "prompt_count": 1, "temperature": 1.0, "top_p": 0.95,
        "max_new_tokens": 8, "seed": 0})
    assert page.status_code == 400
    with pytest.raises(CommandError, match="model_version"):
        call_command("generate", "--project", "mine", "--model", "theirs-sft", "--k", "2")
    assert not GenerationJob.objects.exists() and not Evaluation.objects.exists()
    assert Project.objects.get(pk=project.pk).reward_model is None and queued == []


def test_deleting_a_project_deletes_its_models_instead_of_making_them_global(project, engineer):
    base = ModelVersion.objects.create(name="base", kind="base", path="models/tiny")
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="succeeded")
    sft = ModelVersion.objects.create(name="sft", kind="sft", path="runs/1/model", project=project, parent=base,
                                      produced_by=run)
    ModelVersion.objects.create(name="child", kind="policy", path="runs/2/model", project=project, parent=sft)
    project.delete()
    assert list(ModelVersion.objects.values_list("name", flat=True)) == ["base"]
    assert not TrainingRun.objects.exists()


def test_a_model_in_use_is_kept_when_deleted_on_its_own(project):
    from django.db.models import RestrictedError

    base = ModelVersion.objects.create(name="base", kind="base", path="models/tiny")
    TrainingRun.objects.create(kind="sft", project=project, base_model=base)
    with pytest.raises(RestrictedError):
        base.delete()


def test_the_migration_types_every_existing_path_once():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("training.migrations.0004_model_tenancy")
    run = TrainingRun.objects.create(kind="sft", project=ProjectFactory(),
                                     base_model=ModelVersion.objects.create(name="b", kind="base", path="x"))
    rows = {
        "tiny": ("models/tiny", None),
        "out": ("runs/1/model", run),
        "local": (os.path.abspath("/srv/models/a"), None),
        "grabbed": ("runs/7/model", None),  # registered by a user before: from now on only a hub id
        "hub": ("org/name", None),
    }
    for name, (path, produced_by) in rows.items():
        ModelVersion.objects.create(name=name, kind="sft", path=path, produced_by=produced_by, source="storage")
    migration.sources_set(apps, None)
    sources = dict(ModelVersion.objects.filter(name__in=rows).values_list("name", "source"))
    assert sources == {"tiny": "storage", "out": "storage", "local": "local", "grabbed": "hub", "hub": "hub"}
    assert re.fullmatch(registry.HUB_ID, "runs/7") and not re.fullmatch(registry.HUB_ID, "runs/7/model")


def test_a_model_whose_files_are_gone_is_refused_when_the_job_is_asked_for(client_for, project, engineer, queued):
    demonstrations_create(project=project, n=2)
    PromptFactory.create_batch(2, project=project)
    gone = model_version(name="gone-sft", kind="sft", path="runs/41/model", project=project)
    rm = model_version(name="gone-rm", kind="reward", path="runs/42/model", project=project)
    shutil.rmtree(settings.STORAGE_ROOT / "runs" / "41")
    shutil.rmtree(settings.STORAGE_ROOT / "runs" / "42")
    api = client_for(engineer)
    run = api.post("/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": gone.pk,
                                           "config": {"max_steps": 2}}, format="json")
    assert run.status_code == 400 and run.json()["field"] == "base_model"
    assert "files of model gone-sft are missing" in run.json()["detail"]
    generate = api.post(f"/api/projects/{project.pk}/generate/", {"model_version": gone.pk, "k": 2,
                                                                  "prompt_count": 1}, format="json")
    assert generate.status_code == 400 and generate.json()["field"] == "model_version"
    admin = member(project, Membership.Role.ADMIN)
    assert client_for(admin).patch(f"/api/projects/{project.pk}/", {"reward_model": rm.pk},
                                   format="json").status_code == 200
    pages = Client()
    pages.force_login(admin)
    page = pages.post(f"/projects/{project.pk}/prioritise/", follow=True)
    assert "files of model gone-rm are missing" in page.content.decode()
    assert not TrainingRun.objects.exists() and queued == []
    assert Project.objects.get(pk=project.pk).scoring_status == ""
