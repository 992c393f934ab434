"""The client downloads the dataset directory, starts Hub pushes and reads an evaluation's battle log."""

import tarfile

import pytest
from feedbackloop_client import ApiError, Client

from annotation.models import Membership, Task
from tests.factories import ProjectFactory, member, model_version
from tests.training.labels import comparisons_create
from tests.training.test_evaluation import evaluation_with_tasks, judge

pytestmark = pytest.mark.django_db(transaction=True)


def test_dataset_directory_push_and_battles_through_the_client(live_server, monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr("loop.tasks.generation_execute.apply_async", lambda *a, **kw: None)
    monkeypatch.setattr("annotation.tasks.hub_push_dataset.apply_async", lambda *a, **kw: None)
    project = ProjectFactory()
    eng = member(project, Membership.Role.ENGINEER, username="eng", password="pass-1234")
    comparisons_create(project=project, n=3)
    fl = Client(live_server.url, username="eng", password="pass-1234")

    written = fl.exports.hf_dataset_to(project.pk, "preference", tmp_path / "d.tar", license="mit")
    assert written == (tmp_path / "d.tar").stat().st_size > 0
    with tarfile.open(tmp_path / "d.tar") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    (folder,) = list((tmp_path / "x").iterdir())
    assert datasets.load_dataset(str(folder))["train"].num_rows == 3
    with pytest.raises(ApiError) as caught:
        fl.exports.hf_dataset_to(project.pk, "raw", tmp_path / "raw.tar")
    assert caught.value.status == 400 and caught.value.field == "format"

    push = fl.hub.push_dataset(project.pk, repo_id="me/prefs", token="hf_abc", fmt="preference", exclude_gold=True)
    assert push["status"] == "queued" and push["filters"] == {"exclude_gold": True}
    assert fl.hub.get(push["id"])["repo_id"] == "me/prefs"
    with pytest.raises(ApiError) as caught:
        fl.hub.push_dataset(project.pk, repo_id="me", token="hf_abc", fmt="sft")
    assert caught.value.status == 400 and caught.value.field == "repo_id"

    a = model_version(name="sft-1", kind="sft", path="models/a", project=project)
    b = model_version(name="rlhf-1", kind="policy", path="models/b", project=project)
    evaluation = evaluation_with_tasks(project=project, admin=eng, model_a=a, model_b=b, n=2)
    labeler = member(project, username="jo")
    for task, outcome in zip(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"), ("a", "tie")):
        judge(task, labeler, outcome)
    rows = list(fl.evaluations.battles(evaluation.pk))
    assert len(rows) == 2 and rows[1]["winner"] == "tie"
    assert {rows[0]["model_a"], rows[0]["model_b"]} == {"sft-1", "rlhf-1"}
