"""A registered model pushed to the Hugging Face Hub: who may, what goes up, and an unreachable Hub recorded as failed."""

import pytest

from annotation.models import HubPush, Membership
from tests.annotation.test_hub_push import TOKEN, FakeHub
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, UserFactory, member, model_version
from training import model_push, registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(settings, tmp_path):
    settings.STORAGE_ROOT = str(tmp_path)
    project = ProjectFactory(name="Models")
    engineer = member(project, Membership.Role.ENGINEER, username="eng")
    rm = model_version(name="rm-1", kind="reward", path="runs/1/model", project=project,
                       metrics={"eval_accuracy": 0.83})
    with open(f"{registry.model_location(rm)}/model.safetensors", "wb") as f:
        f.write(b"\x01" * 300)
    hub = model_version(name="hub-base", kind="base", path="org/some-model", source="hub", project=project)
    glob = model_version(name="global-base", kind="base", path="models/global")
    return {"project": project, "engineer": engineer, "rm": rm, "hub": hub, "global": glob}


def body(**extra):
    return {"repo_id": "my-org/rm-1", "token": TOKEN, **extra}


def test_an_engineer_pushes_the_directory_with_its_card(models, monkeypatch):
    import huggingface_hub

    FakeHub.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    api = api_client_for(models["engineer"])
    started = api.post(f"/api/models/{models['rm'].pk}/hub-pushes/", body(private=True), format="json")
    assert started.status_code == 202, started.content
    assert model_push.model_push_run(push_id=started.json()["id"]) == "succeeded"
    assert FakeHub.calls[0][:5] == ("create_repo", "my-org/rm-1", "model", True, True)
    assert FakeHub.calls[1] == ("upload_folder", "my-org/rm-1", "model",
                                ["README.md", "config.json", "model.safetensors"])
    assert FakeHub.uploaded["model.safetensors"] == b"\x01" * 300  # read through the link, never copied
    card = FakeHub.uploaded["README.md"].decode()
    assert "feedbackloop_metrics:\n  eval_accuracy: 0.83" in card and "\nmetrics:" not in card
    assert "# rm-1" in card and "## Intended use" in card
    listed = api.get(f"/api/models/{models['rm'].pk}/hub-pushes/").json()
    assert [(row["status"], row["kind"], row["model"]) for row in listed] == [("succeeded", "model", models["rm"].pk)]


def test_the_pushed_card_keeps_a_hub_base_model_and_renames_a_local_one(models):
    from huggingface_hub import ModelCard

    hub_child = model_version(name="sft-h", kind="sft", path="runs/2/model", parent=models["hub"],
                              project=models["project"], metrics={"loss": 0.5})
    assert ModelCard(model_push.hub_model_card(hub_child)).data.to_dict()["base_model"] == "org/some-model"
    local_child = model_version(name="sft-l", kind="sft", path="runs/3/model", parent=models["rm"],
                                project=models["project"])
    data = ModelCard(model_push.hub_model_card(local_child)).data.to_dict()
    assert "base_model" not in data and data["feedbackloop_base_model"] == "runs/1/model"


def test_with_the_hub_unreachable_the_push_fails_with_the_reason(models):
    push = model_push.model_push_start(model=models["rm"], user=models["engineer"], repo_id="me/rm", token=TOKEN,
                                       private=True)
    assert model_push.model_push_run(push_id=push.pk) == "failed"  # HF_HUB_OFFLINE=1: the Hub is out of reach
    push.refresh_from_db()
    assert push.error.startswith("The Hugging Face Hub could not be reached: ") and push.url == ""
    assert TOKEN not in push.error


def test_who_may_push(models):
    url = f"/api/models/{models['rm'].pk}/hub-pushes/"
    labeler = member(models["project"], Membership.Role.LABELER, username="lab")
    assert api_client_for(labeler).post(url, body(), format="json").status_code == 404
    outsider = member(ProjectFactory(), Membership.Role.ADMIN, username="other-admin")
    assert api_client_for(outsider).post(url, body(), format="json").status_code == 404
    glob = f"/api/models/{models['global'].pk}/hub-pushes/"
    assert api_client_for(models["engineer"]).post(glob, body(), format="json").status_code == 403
    root = UserFactory(username="root", is_superuser=True)
    assert api_client_for(root).post(glob, body(), format="json").status_code == 202
    assert list(HubPush.objects.values_list("model_version_id", flat=True)) == [models["global"].pk]


@pytest.mark.parametrize("model_key, extra, field", [
    ("rm", {"repo_id": "not a repo"}, "repo_id"),
    ("rm", {"token": ""}, "token"),
    ("hub", {}, "model"),
])
def test_bad_input_is_a_400_naming_the_field(models, model_key, extra, field):
    response = api_client_for(models["engineer"]).post(
        f"/api/models/{models[model_key].pk}/hub-pushes/", body(**extra), format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not HubPush.objects.exists()


def test_the_model_page_has_the_form_and_shows_the_error(client, models):
    client.force_login(models["engineer"])
    page = client.get(f"/training/models/{models['rm'].pk}/").content.decode()
    assert 'id="hub-push-form"' in page
    bad = client.post(f"/training/models/{models['rm'].pk}/push/", {"repo_id": "x", "token": TOKEN})
    assert bad.status_code == 400 and 'data-field="repo_id"' in bad.content.decode()
    good = client.post(f"/training/models/{models['rm'].pk}/push/", {"repo_id": "me/rm-1", "token": TOKEN})
    assert good.status_code == 302
    page = client.get(f"/training/models/{models['rm'].pk}/").content.decode()
    assert 'data-status="queued"' in page and "me/rm-1" in page
