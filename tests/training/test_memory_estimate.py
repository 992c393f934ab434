"""The estimated memory per GPU: the API the new-run form asks, and the page that shows it."""

import pytest

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version

pytestmark = pytest.mark.django_db

URL = "/api/training-runs/estimate/"


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def engineer(project):
    return member(project, Membership.Role.ENGINEER)


def ask(client, project, model, config=None, kind="sft"):
    return client.post(URL, {"kind": kind, "project": project.pk, "base_model": model.pk, "config": config or {}},
                       format="json")


def test_the_estimate_of_a_run_with_a_preset(client_for, engineer, project, tiny_base_model):
    body = ask(client_for(engineer), project, tiny_base_model, {"preset": "auto", "batch_size": 2}).json()
    assert body["preset"] == "0.5b" and body["method"] == "lora"  # a 1M-parameter model: the smallest preset
    assert 0 < body["trainable_parameters"] < body["parameters"] < 5_000_000
    assert body["total"] == body["weights"] + body["training"] + body["activations"] + body["overhead"]
    assert body["fits"] is True and body["target_gib"] == 24
    assert body["preset_values"]["lora_r"] == 16 and body["summary"].startswith("About ")
    full = ask(client_for(engineer), project, tiny_base_model, {"batch_size": 2}).json()
    assert full["method"] == "full" and full["preset"] is None and full["preset_values"] == {}
    assert full["trainable_parameters"] == full["parameters"]


def test_explicit_fields_win_over_the_preset(client_for, engineer, project, tiny_base_model):
    body = ask(client_for(engineer), project, tiny_base_model, {"preset": "7-8b", "lora_r": 0}).json()
    assert body["method"] == "full" and body["preset"] == "7-8b" and body["target_gib"] == 80


@pytest.mark.parametrize("config, field", [
    ({"preset": "70b"}, "config.preset"),
    ({"batch_size": 0}, "config.batch_size"),
    ({"load_in_4bit": True}, "config.load_in_4bit"),
])
def test_a_bad_config_is_a_400_naming_the_field(client_for, engineer, project, tiny_base_model, config, field):
    response = ask(client_for(engineer), project, tiny_base_model, config)
    assert response.status_code == 400 and response.json()["field"] == field


def test_a_preset_that_breaks_a_rule_between_fields_is_refused_when_the_run_is_asked_for(
        client_for, engineer, project, tiny_base_model):
    config = {"num_generations": 24, "gradient_accumulation_steps": 3}  # 8 x 3 completions: a group of 24
    assert ask(client_for(engineer), project, tiny_base_model, config, kind="rlhf").status_code == 200
    response = ask(client_for(engineer), project, tiny_base_model, {**config, "preset": "1-3b"},
                   kind="rlhf")  # the preset's batch of 4 makes 4 x 3: no multiple of 24
    assert response.status_code == 400 and response.json()["field"] == "config.batch_size"
    assert "1-3b preset" in response.json()["detail"]


def test_another_projects_model_and_a_stranger_get_nothing(client_for, engineer, project, tiny_base_model):
    other = ProjectFactory()
    theirs = model_version(name="theirs", kind="base", path="models/theirs", source="storage", project=other)
    response = ask(client_for(engineer), project, theirs)
    assert response.status_code == 400 and response.json()["field"] == "base_model"
    stranger = member(other, Membership.Role.ENGINEER)
    assert ask(client_for(stranger), project, tiny_base_model).status_code in (403, 404)


def test_a_model_whose_config_cannot_be_read_is_a_400_on_base_model(client_for, engineer, project):
    broken = model_version(name="broken", kind="base", path="models/broken", source="storage", project=project)
    response = ask(client_for(engineer), project, broken)  # its config.json is "{}": no architecture
    assert response.status_code == 400 and response.json()["field"] == "base_model"
    assert "broken" in response.json()["detail"]


def test_the_new_run_page_has_the_estimate_box(client, engineer, project, tiny_base_model):
    client.force_login(engineer)
    page = client.get("/training/runs/new/").content.decode()
    assert 'id="memory-estimate"' in page and "Estimated memory per GPU" in page
    assert 'data-url="/api/training-runs/estimate/"' in page and "js/memory_estimate.js" in page
    assert 'name="config-preset"' in page and "&quot;lora_r&quot;" in page  # the fields a preset fills in
