"""Config bounds over HTTP: every out-of-range value is a 400 naming config.<field>, and nothing is queued.

Each hole below was once a 201 whose run failed on the worker, or "succeeded" without training.
"""

import pytest
from django.conf import settings

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from tests.training.labels import comparisons_create, demonstrations_create
from training import services
from training.models import DatasetSnapshot, TrainingRun
from training.pipelines import common, dpo

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory(slug="bounds")
    demonstrations_create(project=project, n=2)
    comparisons_create(project=project, n=2)  # every kind has data: only the config can refuse the run
    return project


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


@pytest.fixture
def models(project):
    base = model_version(name="tiny", kind="base", path="models/tiny")
    reward = model_version(name="rm", kind="reward", path="runs/2/model", project=project)
    return {"base": base, "reward": reward}


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


def start(client, project, models, kind, config):
    body = {"kind": kind, "project": project.pk, "base_model": models["base"].pk, "config": config}
    if kind == "rlhf":
        body["reward_model"] = models["reward"].pk
    return client.post("/api/training-runs/", body, format="json")


def assert_refused(response, field, captured, enqueued, project):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == f"config.{field}"
    assert body["detail"].startswith(f"config.{field}: ")
    assert TrainingRun.objects.count() == 0
    assert DatasetSnapshot.objects.count() == 0
    assert captured == [] and enqueued == []
    folder = settings.STORAGE_ROOT / "snapshots" / str(project.pk)
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "config", "field", "says"),
    [
        ("sft", {"max_steps": 10**12}, "max_steps", "-1, or from 1 to 1000000"),
        ("sft", {"num_train_epochs": 0}, "num_train_epochs", "> 0"),
        ("sft", {"lr_scheduler_type": "bogus"}, "lr_scheduler_type", "one of linear, cosine"),
        ("sft", {"lr_scheduler_type": "reduce_lr_on_plateau"}, "lr_scheduler_type", "one of"),
        ("dpo", {"loss_type": "bogus"}, "loss_type", "one of sigmoid, hinge, ipo"),
        ("sft", {"warmup_steps": -1}, "warmup_steps", "from 0 to"),
        ("sft", {"learning_rate": 0}, "learning_rate", "> 0 and <= 1"),
        ("sft", {"learning_rate": 3.0}, "learning_rate", "<= 1"),
        ("sft", {"learning_rate": 10**400}, "learning_rate", "<= 1"),  # too large to be a float at all
        ("sft", {"batch_size": 0}, "batch_size", "from 1 to 1024"),
        ("sft", {"gradient_accumulation_steps": 10**6}, "gradient_accumulation_steps", "from 1 to 1024"),
        ("sft", {"max_length": 2}, "max_length", "from 8 to"),
        ("sft", {"seed": -1}, "seed", "from 0 to 4294967295"),
        ("sft", {"logging_steps": 0}, "logging_steps", "from 1 to"),
        ("sft", {"save_steps": -10}, "save_steps", "from 1 to"),
        ("sft", {"save_total_limit": 0}, "save_total_limit", "from 1 to"),
        ("sft", {"weight_decay": -0.1}, "weight_decay", "from 0 to 1"),
        ("sft", {"lora_r": -1}, "lora_r", "from 0 to"),
        ("sft", {"lora_dropout": 1.0}, "lora_dropout", "< 1"),
        ("sft", {"lora_target_modules": ["q"] * 65}, "lora_target_modules", "at most 64 items"),
        ("sft", {"num_gpus": 65}, "num_gpus", "from 1 to 64"),
        ("reward", {"eval_fraction": 1.0}, "eval_fraction", "< 1"),
        ("reward", {"margin_scale": -1}, "margin_scale", "from 0 to"),
        ("dpo", {"beta": 0}, "beta", "> 0"),
        ("dpo", {"label_smoothing": 0.5}, "label_smoothing", "< 0.5"),
        ("dpo", {"loss_type": "exo_pair"}, "label_smoothing", "exo_pair"),  # a rule between two fields
        ("rlhf", {"top_p": 1.5}, "top_p", "> 0 and <= 1"),
        ("rlhf", {"num_generations": 1}, "num_generations", "from 2 to"),
        ("rlhf", {"algorithm": "ppo"}, "algorithm", "one of rloo, grpo"),
        ("rlhf", {"temperature": 0}, "temperature", "> 0"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_an_out_of_range_config_is_a_400_that_names_the_field_and_queues_nothing(
    client_for, project, admin, models, enqueued, django_capture_on_commit_callbacks, kind, config, field, says
):
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), project, models, kind, config)
    assert_refused(response, field, captured, enqueued, project)
    assert says in response.json()["detail"]


@pytest.mark.parametrize(
    ("config", "field"),
    [({"max_steps": 0}, "max_steps"), ({"num_train_epochs": 0}, "num_train_epochs"),
     ({"max_steps": -1, "num_train_epochs": 0.0}, "num_train_epochs"),
     ({"max_steps": 5, "num_train_epochs": 0}, "num_train_epochs")],
)
@pytest.mark.parametrize("kind", ["sft", "reward", "dpo", "rlhf"])
def test_a_config_that_would_train_zero_steps_is_a_400(
    client_for, project, admin, models, enqueued, django_capture_on_commit_callbacks, kind, config, field
):
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), project, models, kind, config)
    assert_refused(response, field, captured, enqueued, project)


def test_values_on_the_bounds_are_accepted(client_for, project, admin, models, enqueued):
    edges = {"max_steps": 1_000_000, "num_train_epochs": 1000, "learning_rate": 1, "warmup_steps": 0,
             "batch_size": 1024, "seed": 2**32 - 1, "lora_dropout": 0.0, "lr_scheduler_type": "inverse_sqrt"}
    response = start(client_for(admin), project, models, "sft", edges)
    assert response.status_code == 201, response.content
    assert TrainingRun.objects.get().config == {**edges, "learning_rate": 1.0, "num_train_epochs": 1000.0}
    for loss in dpo.LOSS_TYPES:  # every loss TRL accepts is accepted (exo_pair needs label smoothing)
        config = {"loss_type": loss, "label_smoothing": 0.001 if loss == "exo_pair" else 0.0}
        assert services.run_config_validate(kind="dpo", config=config)["loss_type"] == loss


def test_defaults_carry_each_fields_bounds_and_choices(client_for, admin):
    client = client_for(admin)
    sft = client.get("/api/training-runs/defaults/sft/").json()
    assert [sft["max_steps"][key] for key in ("min", "max", "also")] == [1, common.MAX_STEPS, [-1]]
    assert (sft["learning_rate"]["min"], sft["learning_rate"]["exclusive_min"], sft["learning_rate"]["max"]) == (0, True, 1)
    assert "exclusive_max" not in sft["learning_rate"]
    assert sft["lr_scheduler_type"]["choices"] == list(common.LR_SCHEDULERS)
    assert sft["num_gpus"]["min"] == 1 and sft["num_gpus"]["max"] == 64
    assert sft["lora_target_modules"]["max_items"] == 64
    assert sft["num_train_epochs"]["bounds"] == "> 0 and <= 1000"
    dpo_fields = client.get("/api/training-runs/defaults/dpo/").json()
    assert dpo_fields["loss_type"]["choices"] == list(dpo.LOSS_TYPES)
    assert dpo_fields["label_smoothing"]["exclusive_max"] is True
    assert client.get("/api/training-runs/defaults/rlhf/").json()["algorithm"]["choices"] == ["rloo", "grpo"]
    for kind in ("sft", "reward", "dpo", "rlhf"):  # every default lies within its own bounds
        for name, spec in client.get(f"/api/training-runs/defaults/{kind}/").json().items():
            common.check_bounds(name, spec["default"], spec)
