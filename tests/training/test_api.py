"""The training API without a worker: validation before queueing, access, the registry and cancelling."""

import hashlib

import pytest
from django.conf import settings

from annotation.models import Membership
from tests.factories import ProjectFactory, UserFactory, member, model_version
from tests.training.labels import comparisons_create, demonstrations_create, run_frozen
from training import selectors, services
from training.models import DatasetSnapshot, MetricPoint, ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(slug="helpful")


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


@pytest.fixture
def base(project):
    return model_version(name="tiny", kind="base", path="models/tiny")


@pytest.fixture
def enqueued(monkeypatch):
    """Every run_execute message that would reach the broker."""
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


def start(client, **body):
    return client.post("/api/training-runs/", body, format="json")


def assert_nothing_queued(captured, enqueued):
    assert TrainingRun.objects.count() == 0
    assert DatasetSnapshot.objects.count() == 0
    assert captured == []
    assert enqueued == []


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"max_stepz": 5}, "config.max_stepz"),
        ({"max_steps": "five"}, "config.max_steps"),
        ({"learning_rate": True}, "config.learning_rate"),
        ({"model_path": "/etc"}, "config.model_path"),
        ({"output_dir": "/tmp/elsewhere"}, "config.output_dir"),
        ({"num_gpus": 0}, "config.num_gpus"),
        ([1, 2], "config"),
    ],
)
def test_bad_config_is_a_400_naming_the_field_and_queues_nothing(
    client_for, project, admin, base, enqueued, django_capture_on_commit_callbacks, config, field
):
    demonstrations_create(project=project, n=2)
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), kind="sft", project=project.pk, base_model=base.pk, config=config)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert_nothing_queued(captured, enqueued)


def test_unknown_kind(client_for, project, admin, base, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), kind="ppo", project=project.pk, base_model=base.pk, config={})
    assert response.status_code == 400
    assert response.json()["field"] == "kind"
    assert_nothing_queued(captured, enqueued)


def test_rlhf_needs_a_reward_model_of_kind_reward(
    client_for, project, admin, base, enqueued, django_capture_on_commit_callbacks
):
    sft = model_version(name="an-sft", kind="sft", path="runs/1/model", project=project)
    with django_capture_on_commit_callbacks() as captured:
        missing = start(client_for(admin), kind="rlhf", project=project.pk, base_model=base.pk, config={})
        wrong = start(client_for(admin), kind="rlhf", project=project.pk, base_model=base.pk,
                      reward_model=sft.pk, config={})
    assert missing.status_code == 400 and missing.json()["field"] == "reward_model"
    assert wrong.status_code == 400 and wrong.json()["field"] == "reward_model"
    assert "reward" in wrong.json()["detail"]
    assert_nothing_queued(captured, enqueued)


def test_a_reward_model_is_no_base_model(client_for, project, admin, enqueued, django_capture_on_commit_callbacks):
    reward = model_version(name="rm", kind="reward", path="runs/2/model", project=project)
    demonstrations_create(project=project, n=2)
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), kind="sft", project=project.pk, base_model=reward.pk, config={})
    assert response.status_code == 400 and response.json()["field"] == "base_model"
    assert_nothing_queued(captured, enqueued)


def test_a_model_of_another_project_is_not_usable(client_for, project, admin, enqueued):
    other = ProjectFactory()
    hidden = model_version(name="theirs", kind="sft", path="runs/3/model", project=other)
    demonstrations_create(project=project, n=2)
    response = start(client_for(admin), kind="sft", project=project.pk, base_model=hidden.pk, config={})
    assert response.status_code == 400 and response.json()["field"] == "base_model"
    assert TrainingRun.objects.count() == 0


@pytest.mark.parametrize("kind", ["sft", "reward", "dpo", "rlhf"])
def test_an_empty_snapshot_is_a_400_and_leaves_no_file(
    client_for, project, admin, base, enqueued, django_capture_on_commit_callbacks, kind
):
    reward = model_version(name="rm", kind="reward", path="runs/2/model", project=project)
    body = {"reward_model": reward.pk} if kind == "rlhf" else {}
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), kind=kind, project=project.pk, base_model=base.pk, config={}, **body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "project"
    assert "no" in response.json()["detail"].lower()
    assert_nothing_queued(captured, enqueued)
    folder = settings.STORAGE_ROOT / "snapshots" / str(project.pk)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_start_answers_before_the_snapshot_is_frozen_and_the_worker_freezes_it(
    client_for, project, admin, base, enqueued, django_capture_on_commit_callbacks
):
    demonstrations_create(project=project, n=3)
    with django_capture_on_commit_callbacks(execute=True) as captured:
        response = start(client_for(admin), kind="sft", project=project.pk, base_model=base.pk,
                         config={"max_steps": 4, "learning_rate": 1, "num_gpus": 1})
    assert response.status_code == 201, response.content
    body = response.json()
    run = TrainingRun.objects.get()
    assert body["id"] == run.pk and body["status"] == "queued" and body["progress"] == 0.0
    assert run.config == {"max_steps": 4, "learning_rate": 1.0, "num_gpus": 1}
    assert run.checkpoint_dir == f"runs/{run.pk}"
    assert len(captured) == 1 and enqueued == [[run.pk]]
    assert run.snapshot is None and body["snapshot"] is None and DatasetSnapshot.objects.count() == 0
    assert body["phase"] == "queued" and body["data"] == {}
    snapshot = run_frozen(run).snapshot
    assert snapshot.format == "sft" and snapshot.row_count == 3 == run.frozen_rows
    assert run.frozen_rows_expected == 3 and "froze the dataset" in run.log_tail
    assert not snapshot.path.startswith("/")
    data = (settings.STORAGE_ROOT / snapshot.path).read_bytes()
    detail = client_for(admin).get(f"/api/training-runs/{run.pk}/").json()
    assert hashlib.sha256(data).hexdigest() == snapshot.sha256 == detail["snapshot"]["sha256"]
    assert detail["phase"] == "training"
    assert data.count(b"\n") == 3 and b'"assistant"' in data


def test_reward_and_rlhf_snapshots_use_pairs_and_prompts(client_for, project, admin, base, enqueued):
    comparisons_create(project=project, n=2)
    reward = model_version(name="rm", kind="reward", path="runs/2/model", project=project)
    r1 = start(client_for(admin), kind="reward", project=project.pk, base_model=base.pk, config={"max_steps": 2})
    r2 = start(client_for(admin), kind="rlhf", project=project.pk, base_model=base.pk, reward_model=reward.pk,
               config={"beta": 0.1, "num_generations": 2, "batch_size": 2})
    assert r1.status_code == 201 and r2.status_code == 201, (r1.content, r2.content)
    pairs = run_frozen(TrainingRun.objects.get(pk=r1.json()["id"]))
    prompts = run_frozen(TrainingRun.objects.get(pk=r2.json()["id"]))
    assert (pairs.snapshot.format, pairs.snapshot.row_count) == ("preference", 2)
    assert (prompts.snapshot.format, prompts.snapshot.row_count) == ("prompts", 2)
    assert b'"chosen"' in (settings.STORAGE_ROOT / pairs.snapshot.path).read_bytes()
    assert (settings.STORAGE_ROOT / prompts.snapshot.path).read_bytes().startswith(b'{"prompt": [')


def test_rlhf_pipeline_rules_are_checked_before_queueing(client_for, project, admin, base, enqueued):
    comparisons_create(project=project, n=1)
    reward = model_version(name="rm", kind="reward", path="runs/2/model", project=project)
    response = start(client_for(admin), kind="rlhf", project=project.pk, base_model=base.pk,
                     reward_model=reward.pk, config={"beta": 0})
    assert response.status_code == 400 and response.json()["field"] == "config.beta"
    assert TrainingRun.objects.count() == 0


# Access -----------------------------------------------------------------------------------------


@pytest.fixture
def run(project, base, admin):
    return TrainingRun.objects.create(kind="sft", project=project, base_model=base, created_by=admin)


def test_non_members_get_404_everywhere(client_for, project, base, run):
    outsider = UserFactory()
    client = client_for(outsider)
    assert client.get(f"/api/training-runs/{run.pk}/").status_code == 404
    assert client.post(f"/api/training-runs/{run.pk}/cancel/").status_code == 404
    assert start(client, kind="sft", project=project.pk, base_model=base.pk, config={}).status_code == 404
    assert client.get("/api/training-runs/").status_code == 403  # trains nowhere: no list at all
    run.refresh_from_db()
    assert run.status == "queued"


def test_labelers_see_nothing_of_runs_and_may_not_start_or_cancel(client_for, project, base, run, enqueued):
    run.log_tail, run.config = "secret log line", {"max_steps": 3}
    run.save()
    labeler = member(project, Membership.Role.LABELER)
    demonstrations_create(project=project, n=1)
    client = client_for(labeler)
    listed = client.get("/api/training-runs/")
    assert listed.status_code == 403 and "secret" not in listed.content.decode()
    assert client.get(f"/api/training-runs/{run.pk}/").status_code == 404
    assert start(client, kind="sft", project=project.pk, base_model=base.pk, config={}).status_code == 403
    assert client.post(f"/api/training-runs/{run.pk}/cancel/").status_code == 404
    assert client.get("/api/training-runs/defaults/sft/").status_code == 403
    assert TrainingRun.objects.count() == 1 and enqueued == []
    run.refresh_from_db()
    assert run.status == "queued"


def test_unauthenticated_is_refused(client, run):
    assert client.get("/api/training-runs/").status_code in (401, 403)


# Detail and cancel ------------------------------------------------------------------------------


def test_detail_shows_progress_and_metric_series(client_for, admin, run):
    run.status, run.step, run.total_steps, run.log_tail = "running", 2, 8, "hello"
    run.save()
    MetricPoint.objects.bulk_create([
        MetricPoint(run=run, step=1, name="loss", value=2.0),
        MetricPoint(run=run, step=2, name="loss", value=1.5),
        MetricPoint(run=run, step=2, name="learning_rate", value=0.1),
    ])
    body = client_for(admin).get(f"/api/training-runs/{run.pk}/").json()
    assert body["progress"] == 0.25 and body["step"] == 2 and body["total_steps"] == 8
    assert body["metrics"] == {"learning_rate": [[2, 0.1]], "loss": [[1, 2.0], [2, 1.5]]}
    assert body["log_tail"] == "hello" and body["output_model"] is None
    assert selectors.run_metric_series(run=run)["loss"] == [[1, 2.0], [2, 1.5]]


def test_cancel_a_queued_run_at_once_and_a_running_one_through_its_worker(client_for, admin, run, project, base):
    response = client_for(admin).post(f"/api/training-runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["finished_at"]
    running = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running")
    assert client_for(admin).post(f"/api/training-runs/{running.pk}/cancel/").json()["status"] == "cancelling"
    done = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="succeeded")
    response = client_for(admin).post(f"/api/training-runs/{done.pk}/cancel/")
    assert response.status_code == 409
    done.refresh_from_db()
    assert done.status == "succeeded"


# Model registry ---------------------------------------------------------------------------------


def test_model_list_is_scoped_to_own_projects_plus_global_models(client_for, project, admin, base):
    mine = model_version(name="mine", kind="sft", path="runs/1/model", project=project)
    model_version(name="theirs", kind="sft", path="runs/9/model", project=ProjectFactory())
    names = {m["name"] for m in client_for(admin).get("/api/models/").json()["results"]}
    assert names == {base.name, mine.name}
    # Global models too are for those who train somewhere: a labeler or an outsider sees none.
    assert not selectors.model_list_for_user(user=UserFactory()).exists()
    assert not selectors.model_list_for_user(user=member(project, Membership.Role.LABELER)).exists()


def test_register_a_model(client_for, project, admin, base, tmp_path, settings):
    settings.MODEL_ROOTS = [str(tmp_path)]
    client = client_for(admin)
    ok = client.post("/api/models/", {"name": "llama", "kind": "sft", "path": str(tmp_path),
                                      "parent": base.pk, "project": project.pk}, format="json")
    assert ok.status_code == 201, ok.content
    model = ModelVersion.objects.get(name="llama")
    assert model.parent == base and model.project == project
    assert (model.source, model.path) == ("local", str(tmp_path.resolve()))
    hub = client.post("/api/models/", {"name": "hub", "kind": "base", "path": "org/model", "project": project.pk},
                      format="json")
    assert hub.status_code == 201
    cases = [
        ({"name": "llama", "kind": "sft", "path": "org/x", "project": project.pk}, "name"),
        ({"name": "x", "kind": "giant", "path": "org/x", "project": project.pk}, "kind"),
        ({"name": "x", "kind": "sft", "path": str(tmp_path / "missing"), "project": project.pk}, "path"),
        ({"name": "x", "kind": "sft", "path": "org/x", "project": project.pk, "parent": 999999}, "parent"),
        ({"name": "x", "kind": "sft", "path": "org/x"}, "project"),
    ]
    for body, field in cases:
        response = client.post("/api/models/", body, format="json")
        assert response.status_code == 400 and response.json()["field"] == field, (body, response.content)
    assert ModelVersion.objects.filter(name="x").count() == 0


def test_labelers_and_outsiders_may_not_register(client_for, project):
    labeler = member(project, Membership.Role.LABELER)
    body = {"name": "x", "kind": "sft", "path": "org/x", "project": project.pk}
    assert client_for(labeler).post("/api/models/", body, format="json").status_code == 403
    assert client_for(UserFactory()).post("/api/models/", body, format="json").status_code == 404


# Pipeline defaults ------------------------------------------------------------------------------


def test_pipeline_defaults_list_user_fields_only(client_for, admin):
    defaults = selectors.pipeline_defaults(kind="sft")
    assert defaults["max_steps"]["type"] == "int" and defaults["learning_rate"]["type"] == "float"
    assert defaults["packing"]["type"] == "bool" and defaults["packing"]["default"] is False
    assert defaults["max_steps"]["help"]
    assert not {"model_path", "train_file", "output_dir", "eval_file"} & set(defaults)
    rlhf = selectors.pipeline_defaults(kind="rlhf")
    assert "reward_model_path" not in rlhf and "prompts_file" not in rlhf and rlhf["beta"]["default"] > 0
    assert client_for(admin).get("/api/training-runs/defaults/dpo/").json()["beta"]["type"] == "float"
    assert client_for(admin).get("/api/training-runs/defaults/ppo/").status_code == 400


def test_service_and_cli_parse_settings():
    from training.management.commands.train import parse_setting

    assert parse_setting("max_steps=8") == ("max_steps", 8)
    assert parse_setting("lr_scheduler_type=cosine") == ("lr_scheduler_type", "cosine")
    assert services.run_config_validate(kind="sft", config={"max_steps": 8}) == {"max_steps": 8}
