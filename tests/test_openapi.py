"""The API describes itself at /api/schema/ and the browsable page works offline."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_schema_lists_the_stable_paths(client):
    client.force_login(UserFactory())
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/projects/", "/api/projects/{project_id}/", "/api/projects/{project_id}/import/",
        "/api/projects/{project_id}/next/", "/api/tasks/{task_id}/annotations/", "/api/tasks/{task_id}/skip/",
        "/api/projects/{project_id}/export/", "/api/auth/token/",
    ):
        assert path in paths, path


def test_docs_page_loads_swagger_from_our_own_static_files(client):
    client.force_login(UserFactory())
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower() and "https://" not in page


def test_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


# The training run's config: documented from the same metadata that validates it ----------------


@pytest.fixture
def schema(client):
    client.force_login(UserFactory())
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def resolved(schema: dict, node: dict) -> dict:
    """A schema object with its $ref (or a lone allOf around one, as drf-spectacular writes) followed."""
    while True:
        if "$ref" in node:
            node = {**schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]],
                    **{k: v for k, v in node.items() if k != "$ref"}}
        elif len(node.get("allOf", [])) == 1:
            node = {**resolved(schema, node["allOf"][0]), **{k: v for k, v in node.items() if k != "allOf"}}
        else:
            return node


def config_properties(schema: dict, kind: str) -> dict:
    start = resolved(schema, schema["paths"]["/api/training-runs/"]["post"]["requestBody"]["content"]
                     ["application/json"]["schema"])
    body = resolved(schema, {"$ref": start["discriminator"]["mapping"][kind]})
    assert resolved(schema, body["properties"]["kind"])["enum"] == [kind]
    config = resolved(schema, body["properties"]["config"])
    assert config["type"] == "object" and config["additionalProperties"] is False
    return {name: resolved(schema, prop) for name, prop in config["properties"].items()}


def test_the_start_body_is_one_documented_body_per_kind(schema):
    start = resolved(schema, schema["paths"]["/api/training-runs/"]["post"]["requestBody"]["content"]
                     ["application/json"]["schema"])
    assert start["discriminator"]["propertyName"] == "kind"
    assert sorted(start["discriminator"]["mapping"]) == ["dpo", "reward", "rlhf", "sft"]
    assert len(start["oneOf"]) == 4
    rlhf = resolved(schema, {"$ref": start["discriminator"]["mapping"]["rlhf"]})
    sft = resolved(schema, {"$ref": start["discriminator"]["mapping"]["sft"]})
    assert "reward_model" in rlhf["required"] and "reward_model" not in sft["properties"]


def test_the_schema_documents_each_config_fields_bounds(schema):
    from training.pipelines import common, dpo

    sft = config_properties(schema, "sft")
    assert sft["max_steps"]["type"] == "integer" and sft["max_steps"]["default"] == -1
    assert sorted(sft["max_steps"]["oneOf"], key=len) == [
        {"type": "integer", "enum": [-1]}, {"type": "integer", "minimum": 1, "maximum": common.MAX_STEPS}]
    epochs = sft["num_train_epochs"]
    assert (epochs["type"], epochs["minimum"], epochs["exclusiveMinimum"], epochs["maximum"]) == ("number", 0, True, 1000)
    assert "exclusiveMaximum" not in epochs and epochs["default"] == 1.0
    assert (sft["learning_rate"]["minimum"], sft["learning_rate"]["exclusiveMinimum"]) == (0, True)
    assert (sft["warmup_steps"]["minimum"], sft["batch_size"]["maximum"]) == (0, common.MAX_BATCH)
    assert sft["lr_scheduler_type"]["enum"] == list(common.LR_SCHEDULERS)
    assert sft["lora_dropout"]["exclusiveMaximum"] is True and sft["lora_target_modules"]["maxItems"] == 64
    assert sft["save_total_limit"]["nullable"] is True and sft["save_total_limit"]["minimum"] == 1
    assert (sft["num_gpus"]["minimum"], sft["num_gpus"]["maximum"]) == (1, 64)
    assert "model_path" not in sft and "train_file" not in sft  # the platform sets paths
    assert "Allowed: > 0 and <= 1." in sft["learning_rate"]["description"]
    assert config_properties(schema, "dpo")["loss_type"]["enum"] == list(dpo.LOSS_TYPES)
    top_p = config_properties(schema, "rlhf")["top_p"]
    assert (top_p["minimum"], top_p["exclusiveMinimum"], top_p["maximum"]) == (0, True, 1)
    reward = config_properties(schema, "reward")
    assert (reward["eval_fraction"]["maximum"], reward["eval_fraction"]["exclusiveMaximum"]) == (1, True)


@pytest.mark.parametrize(
    ("kind", "config", "valid"),
    [("sft", {"max_steps": 5, "learning_rate": 1, "num_gpus": 2}, True), ("sft", {"max_steps": -1}, True),
     ("sft", {"max_steps": 0}, False), ("sft", {"max_steps": 10**12}, False), ("sft", {"num_train_epochs": 0}, False),
     ("sft", {"lr_scheduler_type": "bogus"}, False), ("sft", {"warmup_steps": -1}, False),
     ("sft", {"max_stepz": 5}, False), ("dpo", {"loss_type": "ipo"}, True), ("dpo", {"loss_type": "bogus"}, False),
     ("sft", {"loss_type": "ipo"}, False), ("rlhf", {"top_p": 1.0}, True), ("rlhf", {"top_p": 0}, False)],
)
def test_the_schema_accepts_what_the_validator_accepts(schema, kind, config, valid):
    """A body checked against the published schema (jsonschema, draft 4 as OpenAPI 3.0) and by the API's validator."""
    import jsonschema

    from annotation.errors import InvalidInput
    from training import services

    body = {"kind": kind, "project": 1, "base_model": 1, "config": config}
    if kind == "rlhf":
        body["reward_model"] = 2
    validator = jsonschema.Draft4Validator({"$ref": "#/components/schemas/TrainingRunStart", **schema})
    assert validator.is_valid(body) is valid
    try:
        services.run_config_validate(kind=kind, config=config)
    except InvalidInput:
        assert not valid
    else:
        assert valid


def test_docs_page_has_the_way_back_to_the_product():
    from django.test import Client

    from annotation.models import Membership
    from tests.factories import ProjectFactory, member

    project = ProjectFactory()
    client = Client()
    client.force_login(member(project, Membership.Role.ENGINEER))
    page = client.get("/api/docs/").content.decode()
    bar = page[page.index('<header class="docs-bar">'):page.index("</header>")]
    assert 'href="/"' in bar and 'href="/training/runs/"' in bar and '<html lang="en">' in page
    client.force_login(member(project, Membership.Role.LABELER))
    bar = client.get("/api/docs/").content.decode().split('<header class="docs-bar">')[1].split("</header>")[0]
    assert 'href="/"' in bar and "/training/" not in bar  # the training area only for those who train
