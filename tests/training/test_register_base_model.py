"""`manage.py register_base_model DIR --name N`: any local Hugging Face model directory as a global base model.

The directory is checked offline (config.json, tokenizer, an architecture transformers builds), and a
registered one trains like the built-in base: a run through the real Celery worker, with the auto preset.
"""

import io
import json
import shutil
import time

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Membership
from tests.factories import ProjectFactory, member
from tests.training.labels import demonstrations_create
from tests.training.test_worker import wait_final
from training.models import ModelVersion, TrainingRun
from training.runner import run_dir

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_model(tiny_base_model_dir, tmp_path):
    """A copy of the tiny model's files outside the platform's storage, as an operator would have one."""
    folder = tmp_path / "models" / "my-tiny"
    shutil.copytree(tiny_base_model_dir, folder)
    return folder


def register(path, name="my-tiny"):
    out = io.StringIO()
    call_command("register_base_model", str(path), "--name", name, stdout=out)
    return out.getvalue()


def test_a_local_directory_becomes_a_global_base_model(local_model):
    said = register(local_model)
    model = ModelVersion.objects.get(name="my-tiny")
    assert (model.kind, model.source, model.project_id, model.path) == ("base", "local", None, str(local_model))
    assert "LlamaForCausalLM" in said and "M parameters" in said


@pytest.mark.parametrize("damage, says", [
    ("config", "has no config.json"),
    ("tokenizer", "has no tokenizer"),
    ("architecture", "cannot read the config"),
    ("missing", "no model directory"),
])
def test_a_directory_that_cannot_be_a_base_model_is_refused_saying_why(local_model, damage, says):
    if damage == "config":
        (local_model / "config.json").unlink()
    elif damage == "tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (local_model / name).unlink(missing_ok=True)
    elif damage == "architecture":
        config = json.loads((local_model / "config.json").read_text())
        config["model_type"] = "no-such-architecture"
        (local_model / "config.json").write_text(json.dumps(config))
    else:
        shutil.rmtree(local_model)
    with pytest.raises(CommandError, match=says):
        register(local_model)
    assert not ModelVersion.objects.filter(name="my-tiny").exists()


def test_a_taken_name_is_refused(local_model, tiny_base_model):
    with pytest.raises(CommandError, match="exists already"):
        register(local_model, name=tiny_base_model.name)


@pytest.mark.slow
def test_a_registered_directory_trains_with_the_auto_preset(celery_worker_process, local_model, client_for):
    register(local_model)
    base = ModelVersion.objects.get(name="my-tiny")
    project = ProjectFactory(slug=f"local-{time.monotonic_ns()}")
    demonstrations_create(project=project, n=8)
    admin = member(project, Membership.Role.ADMIN)
    config = {"preset": "auto", "max_steps": 2, "batch_size": 2, "logging_steps": 1, "max_length": 64}
    response = client_for(admin).post("/api/training-runs/", {
        "kind": "sft", "project": project.pk, "base_model": base.pk, "config": config}, format="json")
    assert response.status_code == 201, response.content
    run = wait_final(response.json()["id"], worker=celery_worker_process)
    assert run.status == TrainingRun.Status.SUCCEEDED, f"{run.error}\n{run.log_tail}"
    output = ModelVersion.objects.get(produced_by=run)
    assert output.parent_id == base.pk
    # The auto preset read the model's size (about 1M parameters: the 0.5b preset) and its values ran,
    # under the explicit batch size.
    ran = json.loads((run_dir(run) / "pipeline_config.json").read_text())
    assert (ran["preset"], ran["lora_r"], ran["gradient_accumulation_steps"], ran["batch_size"]) == ("auto", 16, 4, 2)
