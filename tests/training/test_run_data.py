"""A run's `data` section: the quality filters its snapshot is taken with, from the API, the page and the CLI."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.models import Annotation, Membership
from tests.factories import ProjectFactory, gold_comparison_task, member, model_version
from tests.training.labels import comparisons_create, demonstrations_create, run_frozen
from training.models import DatasetSnapshot, TrainingRun
from training.snapshots import storage_path

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
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


@pytest.fixture
def comparisons(project):
    """Four ordinary comparisons and a gold one, each judged by one labeler."""
    made = comparisons_create(project=project, n=4)
    gold = gold_comparison_task(project=project, texts=("Gold right.", "Gold wrong."))
    shown = list(gold.task_responses.order_by("position").values_list("response_id", flat=True))
    Annotation.objects.create(task=gold, project=project, labeler=made[0].labeler, kind="comparison",
                              ranking=[[shown[0]], [shown[1]]], strength="better")
    return made


def start(client, **body):
    return client.post("/api/training-runs/", body, format="json")


def snapshot_rows(snapshot: DatasetSnapshot) -> list[dict]:
    return [json.loads(line) for line in storage_path(snapshot.path).read_text().splitlines()]


def test_a_reward_run_freezes_a_filtered_snapshot_and_records_its_filters(
    client_for, project, admin, base, comparisons, enqueued
):
    response = start(client_for(admin), kind="reward", project=project.pk, base_model=base.pk, config={},
                     data={"exclude_gold": True, "consensus": "weight"})
    assert response.status_code == 201, response.content
    assert response.json()["data"] == {"exclude_gold": True, "consensus": "weight"}
    run = run_frozen(TrainingRun.objects.get())
    assert run.snapshot.filters == {"exclude_gold": True, "consensus": "weight"} == run.data_filters
    rows = snapshot_rows(run.snapshot)
    assert len(rows) == run.snapshot.row_count == 4  # the gold comparison is left out
    assert all(row["weight"] == 1.0 and "margin" not in row for row in rows)  # one labeler: no doubt
    assert not any(row["chosen"][0]["content"].startswith("Gold") for row in rows)


def test_without_data_the_snapshot_keeps_everything_and_records_no_filter(
    client_for, project, admin, base, comparisons, enqueued
):
    response = start(client_for(admin), kind="dpo", project=project.pk, base_model=base.pk, config={})
    assert response.status_code == 201, response.content
    snapshot = run_frozen(TrainingRun.objects.get()).snapshot
    assert snapshot.filters == {} and snapshot.row_count == 5


@pytest.mark.parametrize(("kind", "data", "field"), [
    ("reward", {"exclude_gold": "sometimes"}, "data.exclude_gold"),
    ("reward", {"min_competense": 0.5}, "data.min_competense"),
    ("reward", {"min_competence": 3}, "data.min_competence"),
    ("reward", {"min_competence": 0.5}, "data.min_competence"),  # no quality report yet
    ("reward", {"reviewed_only": True}, "data"),  # nothing reviewed: nothing left to train on
    ("reward", [1, 2], "data"),
    ("sft", {"consensus": "margin"}, "data.consensus"),
    ("sft", {"ties": True}, "data.ties"),
    ("dpo", {"ties": True, "consensus": "weight"}, "data.ties"),
    ("rlhf", {"exclude_gold": True}, "data"),
])
def test_bad_data_is_a_400_naming_the_field_and_queues_nothing(
    client_for, project, admin, base, comparisons, enqueued, django_capture_on_commit_callbacks, kind, data, field
):
    demonstrations_create(project=project, n=2)
    body = {}
    if kind == "rlhf":
        body["reward_model"] = model_version(name="rm", kind="reward", path="runs/9/model", project=project).pk
    with django_capture_on_commit_callbacks() as captured:
        response = start(client_for(admin), kind=kind, project=project.pk, base_model=base.pk, config={},
                         data=data, **body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert TrainingRun.objects.count() == 0 and DatasetSnapshot.objects.count() == 0
    assert captured == [] and enqueued == []


def test_the_run_page_shows_the_snapshot_filters(client, project, admin, base, comparisons, enqueued, client_for):
    start(client_for(admin), kind="reward", project=project.pk, base_model=base.pk, config={},
          data={"exclude_gold": True})
    client.force_login(admin)
    run = TrainingRun.objects.get()
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert "Frozen by the worker when the run starts" in html and "<code>exclude_gold=true</code>" in html
    run_frozen(run)
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert f"#{run.snapshot_id} · Preference" in html and "<code>exclude_gold=true</code>" in html


def test_the_new_run_form_sends_its_data_filters(client, project, admin, base, comparisons, enqueued):
    client.force_login(admin)
    page = client.get(reverse("training-run-new")).content.decode()
    assert 'name="data_exclude_gold"' in page and "js/run_data_counts.js" in page
    form = {"kind": "reward", "project": str(project.pk), "base_model": str(base.pk),
            "data_exclude_gold": "on", "data_consensus": "margin", "data_min_competence": ""}
    response = client.post(reverse("training-run-new"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert run_frozen(TrainingRun.objects.get()).snapshot.filters == {"exclude_gold": True, "consensus": "margin"}


def test_the_new_run_form_shows_a_filter_error_beside_its_field(client, project, admin, base, comparisons, enqueued):
    client.force_login(admin)
    form = {"kind": "reward", "project": str(project.pk), "base_model": str(base.pk), "data_min_competence": "7"}
    response = client.post(reverse("training-run-new"), form)
    assert response.status_code == 400
    html = response.content.decode()
    assert "min_competence must be a number from 0 to 1." in html
    assert TrainingRun.objects.count() == 0


def test_train_command_takes_data_filters(project, admin, base, comparisons, enqueued):
    out = StringIO()
    call_command("train", "--kind", "reward", "--project", "helpful", "--base", "tiny", "--no-follow",
                 "--data", "exclude_gold=true", "--data", "consensus=margin", stdout=out)
    assert run_frozen(TrainingRun.objects.get()).snapshot.filters == {"exclude_gold": True, "consensus": "margin"}
    assert "filtered by exclude_gold=True, consensus=margin" in out.getvalue()
    with pytest.raises(CommandError, match="data.min_competence"):
        call_command("train", "--kind", "reward", "--project", "helpful", "--base", "tiny", "--no-follow",
                     "--data", "min_competence=2", stdout=StringIO())
