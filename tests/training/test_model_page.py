"""A model's page and download: card, key metric first, lineage, uses; scoped like the registry."""

import io
import tarfile

import pytest

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from training import registry
from training.models import DatasetSnapshot, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(settings, tmp_path):
    settings.STORAGE_ROOT = str(tmp_path)
    project = ProjectFactory(name="Models")
    engineer = member(project, Membership.Role.ENGINEER, username="eng")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    snapshot = DatasetSnapshot.objects.create(project=project, format="preference", path="s.jsonl", sha256="ab" * 32,
                                              row_count=12)
    run = TrainingRun.objects.create(kind="reward", project=project, base_model=base, status="succeeded",
                                     snapshot=snapshot, config={"learning_rate": 0.0005, "max_steps": 40})
    rm = model_version(name="rm-1", kind="reward", path="runs/1/model", parent=base, project=project, produced_by=run,
                       metrics={"loss": 0.41, "eval_accuracy": 0.83, "train_runtime": 12.5})
    folder = registry.model_location(rm)
    with open(f"{folder}/model.safetensors", "wb") as f:
        f.write(b"\x01" * 3000)
    TrainingRun.objects.create(kind="rlhf", project=project, base_model=base, reward_model=rm, status="queued")
    return {"project": project, "engineer": engineer, "base": base, "rm": rm, "run": run}


def test_the_page_shows_the_key_metric_first_the_card_lineage_and_uses(client, models):
    client.force_login(models["engineer"])
    page = client.get(f"/training/models/{models['rm'].pk}/").content.decode()
    assert page.index("eval_accuracy") < page.index("train_runtime") and 'class="key-metric"' in page
    assert "dataset_sha256: &quot;" + "ab" * 32 in page and "learning_rate: 0.0005" in page
    assert "tiny-base" in page and "as its reward model" in page and f"run #{models['run'].pk}" in page


def test_download_streams_a_tar_with_the_files_and_a_card(client, models):
    client.force_login(models["engineer"])
    response = client.get(f"/training/models/{models['rm'].pk}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)))
    names = archive.getnames()
    assert "rm-1/model.safetensors" in names and "rm-1/README.md" in names and "rm-1/config.json" in names
    assert archive.extractfile("rm-1/model.safetensors").read() == b"\x01" * 3000
    card = archive.extractfile("rm-1/README.md").read().decode()
    assert card.startswith("---\nmodel_name: \"rm-1\"") and "eval_accuracy: 0.83" in card


def test_labelers_and_outsiders_see_no_model(client, models):
    client.force_login(member(models["project"], Membership.Role.LABELER, username="lab"))
    assert client.get(f"/training/models/{models['rm'].pk}/").status_code in (403, 404)
    assert client.get(f"/training/models/{models['rm'].pk}/download/").status_code in (403, 404)
    client.force_login(member(ProjectFactory(), Membership.Role.ADMIN, username="other-admin"))
    assert client.get(f"/training/models/{models['rm'].pk}/").status_code == 404
    assert client.get(f"/training/models/{models['rm'].pk}/download/").status_code == 404
    hub = model_version(name="hub-model", kind="base", path="org/model", source="hub", project=models["project"])
    client.force_login(models["engineer"])
    assert client.get(f"/training/models/{hub.pk}/download/").status_code == 404


def test_a_runs_tracker_files_are_listed_and_download_only_for_those_who_may_train(client, tmp_path, settings):
    from django.contrib.auth import get_user_model

    from training.models import ModelVersion

    settings.STORAGE_ROOT = tmp_path
    project = ProjectFactory()
    admin = member(project, Membership.Role.ADMIN)
    labeler = member(project)
    base = ModelVersion.objects.create(name="tiny-t", kind="base", path="models/tiny")
    run = TrainingRun.objects.create(project=project, kind="sft", base_model=base, config={"report_to": "tensorboard"},
                                     status="succeeded", checkpoint_dir="runs/77")
    events = tmp_path / "runs/77/trackers/tensorboard/Nov30"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.host").write_bytes(b"x" * 300)
    client.force_login(admin)
    page = client.get(f"/training/runs/{run.pk}/").content.decode()
    assert 'data-role="trackers"' in page and f"/training/runs/{run.pk}/trackers/tensorboard.tar" in page
    assert "1 file, 300" in page
    response = client.get(f"/training/runs/{run.pk}/trackers/tensorboard.tar")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)))
    assert f"run-{run.pk}-tensorboard/Nov30/events.out.tfevents.1.host" in archive.getnames()
    assert client.get(f"/training/runs/{run.pk}/trackers/trackio.tar").status_code == 404  # none written
    assert client.get(f"/training/runs/{run.pk}/trackers/secrets.tar").status_code == 404  # not a tracker
    client.force_login(labeler)
    assert client.get(f"/training/runs/{run.pk}/trackers/tensorboard.tar").status_code == 404
    client.force_login(get_user_model().objects.create_user("outsider", password="x"))
    assert client.get(f"/training/runs/{run.pk}/trackers/tensorboard.tar").status_code == 404


def test_a_registered_model_directory_gets_its_card_that_huggingface_hub_parses(tmp_path, settings):
    from huggingface_hub import ModelCard

    from training import run_worker
    from training.models import ModelVersion

    settings.STORAGE_ROOT = tmp_path
    project = ProjectFactory(slug="cards")
    base = ModelVersion.objects.create(name="tiny-c", kind="base", path="models/tiny")
    snapshot = DatasetSnapshot.objects.create(project=project, format="sft", path="snapshots/1.jsonl",
                                              sha256="ab" * 32, row_count=12)
    run = TrainingRun.objects.create(project=project, kind="sft", base_model=base, snapshot=snapshot,
                                     config={"max_steps": 6, "learning_rate": 0.001}, status="running",
                                     checkpoint_dir="runs/9")
    folder = tmp_path / "runs/9/model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# A library's generic card\n")
    model = run_worker.run_succeed(run=run, metrics={"train_loss": 0.42})
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["dataset_sha256"] == "ab" * 32 and data["dataset_rows"] == 12 and data["training_run"] == run.pk
    assert data["base_model"] == "models/tiny" and data["metrics"] == {"train_loss": 0.42}
    assert data["training_config"] == {"learning_rate": 0.001, "max_steps": 6}
    assert "feedbackloop" in data["tags"] and "## Intended use" in card.text
    assert "generic card" not in card.text and model.name in card.text
