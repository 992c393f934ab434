"""An evaluation's battle log, in the shape FastChat's arena statistics read, on an evaluation built by the services."""

import json

import pytest

from annotation.exporters import labeler_pseudonym
from annotation.models import Annotation, Membership, Task
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member
from tests.training import test_evaluation as evaluation_tests
from tests.training.test_evaluation import evaluation_with_tasks, judge
from loop import battles

pytestmark = pytest.mark.django_db

# The evaluation tests' project, admin, models and queued-generation fixtures, shared as they are.
project, admin, models, enqueued = (
    evaluation_tests.project, evaluation_tests.admin, evaluation_tests.models, evaluation_tests.enqueued
)

FIELDS = {"question_id", "task_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp", "evaluation"}


@pytest.fixture
def judged(project, admin, models, enqueued):
    """Four A/B tasks: A wins, B wins, a tie, and an all-bad tie; one more judged then rejected by a reviewer."""
    evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=models[0], model_b=models[1], n=5)
    tasks = list(Task.objects.filter(metadata__evaluation=evaluation.pk).order_by("id"))
    labeler = member(project, username="judge-jo", email="jo@example.com")
    made = [judge(tasks[0], labeler, "a"), judge(tasks[1], labeler, "b"), judge(tasks[2], labeler, "tie")]
    bad = judge(tasks[3], labeler, "tie")
    Annotation.objects.filter(pk=bad.pk).update(all_bad=True)
    rejected = judge(tasks[4], labeler, "a")
    Annotation.objects.filter(pk=rejected.pk).update(review_state="rejected")
    return evaluation, tasks, labeler, made + [bad]


def expected_winner(task, outcome):
    left = task.task_responses.order_by("position").select_related("response__model_version").first()
    left_is_a = left.response.model_version.name == "sft-1"
    return {"a": "model_a" if left_is_a else "model_b", "b": "model_b" if left_is_a else "model_a"}.get(outcome, outcome)


def test_one_row_per_counted_judgement_with_the_arena_fields_and_winners(admin, judged):
    evaluation, tasks, labeler, made = judged
    rows = list(battles.evaluation_battles(evaluation=evaluation))
    assert len(rows) == 4  # the rejected judgement gives way
    assert all(set(row) == FIELDS for row in rows)
    assert all(row["winner"] in battles.WINNERS for row in rows)
    assert [row["winner"] for row in rows] == [
        expected_winner(tasks[0], "a"), expected_winner(tasks[1], "b"), "tie", "tie (bothbad)",
    ]
    for row, task, annotation in zip(rows, tasks, made):
        left, right = task.task_responses.order_by("position").select_related("response__model_version")
        assert (row["model_a"], row["model_b"]) == (left.response.model_version.name, right.response.model_version.name)
        assert row["task_id"] == task.pk and row["question_id"] == task.prompt.external_id
        assert row["judge"] == labeler_pseudonym(labeler.pk) and row["anony"] is True
        assert row["tstamp"] == pytest.approx(annotation.created_at.timestamp(), abs=0.001)
        assert isinstance(row["tstamp"], float)


def test_the_api_streams_jsonl_and_json_and_labelers_see_nothing(admin, judged, project):
    evaluation, _, labeler, _ = judged
    api = api_client_for(admin)
    url = f"/api/evaluations/{evaluation.pk}/battles/"
    lines = api.get(url)
    assert lines.status_code == 200 and lines["Content-Type"] == "application/x-ndjson"
    text = b"".join(lines.streaming_content).decode()
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == list(battles.evaluation_battles(evaluation=evaluation))
    assert "jo@example.com" not in text and "judge-jo" not in text
    array = api.get(url, {"format": "json"})
    assert array["Content-Type"] == "application/json"
    assert json.loads(b"".join(array.streaming_content)) == rows
    bad = api.get(url, {"format": "csv"})
    assert bad.status_code == 400 and bad.json()["field"] == "format"
    assert api_client_for(labeler).get(url).status_code == 404
    outsider = member(ProjectFactory(), Membership.Role.ADMIN, username="elsewhere")
    assert api_client_for(outsider).get(url).status_code == 404


def test_the_evaluation_page_links_to_the_log(client, admin, judged):
    evaluation, *_ = judged
    client.force_login(admin)
    page = client.get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert f'href="/api/evaluations/{evaluation.pk}/battles/"' in page
