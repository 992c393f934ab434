"""Is the reward model still right? Its agreement with the newest labels on the current policy's samples."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.errors import Conflict
from annotation.models import Annotation, Membership, Response
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member, model_version
from tests.training.test_active_sampling import tiny_reward_model_dir  # noqa: F401  (a fixture)
from training import staleness
from training.models import ModelVersion, RewardModelCheck

pytestmark = pytest.mark.django_db

STUB = Path(settings.BASE_DIR) / "tests" / "training" / "stub_score.py"


@pytest.fixture
def stub_scorer(monkeypatch):
    """The scoring pipeline replaced at its boundary (the command): scores are the numbers in the texts."""
    def command(*, model_dir, input_file, output_file):
        return [sys.executable, str(STUB), "--model", model_dir, "--input", str(input_file),
                "--output", str(output_file)]

    monkeypatch.setattr("training.staleness.jobs.score_command", command)


def policy_task(project, policy, scores):
    """A comparison of the policy's responses, each text carrying its reward score ("score=...")."""
    task = comparison_task(project=project, texts=[f"Answer {i}, score={s}" for i, s in enumerate(scores)])
    Response.objects.filter(tasks=task).update(model_version=policy, source=Response.Source.MODEL)
    return task, list(task.task_responses.order_by("position").values_list("response_id", flat=True))


def labeled(task, ranking, **fields):
    return Annotation.objects.create(
        task=task, project_id=task.project_id, labeler=member(task.project), kind=Annotation.Kind.COMPARISON,
        ranking=ranking, strength="better", **fields,
    )


@pytest.fixture
def world():
    """A project whose newest policy wrote four 3-way comparisons, labeled so that 9 of 12 pairs agree with the RM."""
    project = ProjectFactory(overlap=1)
    engineer = member(project, Membership.Role.ENGINEER, username=f"eng-{uuid.uuid4().hex[:6]}")
    labeler = member(project, username=f"lab-{uuid.uuid4().hex[:6]}")
    rm = model_version(name=f"rm-{uuid.uuid4().hex[:6]}", kind=ModelVersion.Kind.REWARD, path="models/rm-s",
                       project=project, metrics={"eval_accuracy": 0.8})
    old = model_version(name=f"sft-{uuid.uuid4().hex[:6]}", kind=ModelVersion.Kind.SFT, path="models/sft", project=project)
    new = model_version(name=f"policy-{uuid.uuid4().hex[:6]}", kind=ModelVersion.Kind.POLICY, path="models/pol",
                        project=project, parent=old)
    # The older model's labels disagree with the RM completely; they must not count.
    old_task, (a, b, c) = policy_task(project, old, [3, 2, 1])
    labeled(old_task, [[c], [b], [a]])
    for _ in range(3):  # the RM orders all three pairs like the humans
        task, (a, b, c) = policy_task(project, new, [3, 2, 1])
        labeled(task, [[a], [b], [c]])
    task, (a, b, c) = policy_task(project, new, [3, 2, 1])
    labeled(task, [[c], [b], [a]])  # ... and none of these
    rejected_task, (a, b, c) = policy_task(project, new, [3, 2, 1])
    labeled(rejected_task, [[c], [b], [a]], review_state=Annotation.ReviewState.REJECTED)  # does not count
    return {"project": project, "engineer": engineer, "labeler": labeler, "rm": rm, "old": old, "new": new}


def run_check(project, rm) -> RewardModelCheck:
    check = RewardModelCheck.objects.create(reward_model=rm, project=project, status=RewardModelCheck.Status.QUEUED)
    assert staleness.reward_check_execute(check_id=check.pk) in ("succeeded", "failed")
    check.refresh_from_db()
    return check


# The numbers ----------------------------------------------------------------------------------


def test_ranking_pairs_keep_the_policys_responses_and_skip_ties():
    assert staleness.ranking_pairs([[1], [2, 3], [4]], {1, 2, 3, 4}) == [(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)]
    assert staleness.ranking_pairs([[1], [2], [9]], {1, 2}) == [(1, 2)]
    assert staleness.ranking_pairs([1, 2], {1, 2}) == [(1, 2)]  # bare ids are groups of one
    assert staleness.ranking_pairs([], {1}) == []


def test_pair_agreement_counts_equal_scores_half():
    scores = {1: 2.0, 2: 1.0, 3: 1.0}
    assert staleness.pair_agreement([(1, 2), (2, 1), (2, 3), (1, 3)], scores) == pytest.approx(2.5 / 4)
    assert staleness.pair_agreement([(7, 8)], scores) is None


@pytest.mark.parametrize("agreement, pairs, own, stale", [
    (0.59, 50, None, True),  # below 0.6
    (0.65, 50, 0.8, True),  # more than 0.1 below its own eval accuracy
    (0.75, 50, 0.8, False),
    (0.61, 50, None, False),
    (0.2, 5, None, False),  # too few pairs to tell
])
def test_the_stale_rule(agreement, pairs, own, stale):
    model = ModelVersion(name="rm", kind="reward", metrics={"eval_accuracy": own} if own is not None else {})
    verdict, why = staleness.stale_verdict(agreement=agreement, pairs=pairs, model=model)
    assert verdict is stale
    assert ("collect comparisons" in why) is stale


def test_the_current_policy_is_the_newest_non_reward_model_that_wrote_comparison_candidates(world):
    project = world["project"]
    assert staleness.current_policy(project=project) == world["new"]
    # A newer model that wrote nothing, or wrote only a demonstration's response, is not the policy.
    model_version(name=f"idle-{uuid.uuid4().hex[:6]}", kind="policy", path="models/idle", project=project)
    demo = TaskFactory(project=project)
    writer = model_version(name=f"demo-{uuid.uuid4().hex[:6]}", kind="sft", path="models/demo", project=project)
    Response.objects.create(prompt=demo.prompt, text="x", source="model", model_version=writer)
    assert staleness.current_policy(project=project) == world["new"]


# The check ------------------------------------------------------------------------------------


def test_the_agreement_on_a_fixture_with_known_scores(world, stub_scorer, monkeypatch):
    check = run_check(world["project"], world["rm"])
    assert check.status == "succeeded", check.message
    # 4 counting labels on the newest policy's tasks, 3 pairs each; 9 of the 12 pairs agree.
    assert (check.labels, check.pairs, check.policy_id) == (4, 12, world["new"].pk)
    assert check.agreement == pytest.approx(0.75)
    assert check.computed_at is not None
    summary = staleness.check_summary(check)
    assert summary["stale"] is False and summary["agreement_percent"] == 75.0  # 0.75 >= 0.8 - 0.1
    assert summary["verdict"] == "ok"
    # Newer labels that disagree make it stale: only the newest LABELS count.
    for _ in range(4):
        task, (a, b, c) = policy_task(world["project"], world["new"], [3, 2, 1])
        labeled(task, [[c], [b], [a]])
    check.status = "queued"
    check.save()
    assert staleness.reward_check_execute(check_id=check.pk) == "succeeded"
    check.refresh_from_db()
    assert (check.labels, check.pairs) == (8, 24) and check.agreement == pytest.approx(9 / 24)
    assert staleness.check_summary(check)["verdict"] == "stale"
    monkeypatch.setattr("training.staleness.labels.LABELS", 3)
    check.status = "queued"
    check.save()
    staleness.reward_check_execute(check_id=check.pk)
    check.refresh_from_db()
    assert (check.labels, check.agreement) == (3, 0.0)
    # A delivered-twice message finds nothing queued and does nothing.
    assert staleness.reward_check_execute(check_id=check.pk) == "skipped"


def test_a_failed_scoring_says_why_and_keeps_the_last_numbers(world, monkeypatch):
    check = RewardModelCheck.objects.create(
        reward_model=world["rm"], project=world["project"], status="queued", agreement=0.7, labels=5, pairs=15,
        computed_at=timezone.now(),
    )
    monkeypatch.setattr("training.staleness.jobs.score_command", lambda **kw: [sys.executable, "-c", "import sys; sys.exit(3)"])
    assert staleness.reward_check_execute(check_id=check.pk) == "failed"
    check.refresh_from_db()
    assert check.status == "failed" and "Scoring failed with" in check.message
    assert (check.agreement, check.labels, check.pairs) == (0.7, 5, 15)


def test_without_a_policy_there_is_nothing_to_judge(stub_scorer):
    project = ProjectFactory()
    rm = model_version(name=f"rm-{uuid.uuid4().hex[:6]}", kind="reward", path="models/rm-n", project=project)
    comparison_task(project=project)
    check = run_check(project, rm)
    assert (check.status, check.agreement, check.labels) == ("succeeded", None, 0)
    assert "No model has written" in check.message


# Scheduling -----------------------------------------------------------------------------------


def test_the_button_queues_one_check_per_reward_model_and_not_twice(world, client, monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    client.force_login(world["engineer"])
    url = f"/training/projects/{world['project'].pk}/reward-checks/"
    response = client.post(url)
    assert response.status_code == 302 and response.url.endswith(f"/projects/{world['project'].pk}/dashboard/")
    check = RewardModelCheck.objects.get(reward_model=world["rm"], project=world["project"])
    assert check.status == "queued"
    with pytest.raises(Conflict):
        staleness.reward_check_schedule(project=world["project"], reward_model=world["rm"])
    assert staleness.reward_checks_schedule_project(project=world["project"]) == []


def test_the_schedule_sends_the_gpu_task_after_the_commit(world, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    with django_capture_on_commit_callbacks(execute=True):
        check = staleness.reward_check_schedule(project=world["project"], reward_model=world["rm"])
    assert sent == [(check.pk,)]


def test_the_beat_sweep_queues_checks_that_are_due_and_have_new_labels(world, monkeypatch):
    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda *args, **kw: None)
    # A reward model whose directory is gone is skipped (the next sweep tries again); the others go on.
    ModelVersion.objects.create(name=f"rm-gone-{uuid.uuid4().hex[:6]}", kind="reward", path="models/gone-rm",
                                project=world["project"])
    assert staleness.reward_checks_refresh() == 1  # never checked, labels exist
    assert staleness.reward_checks_refresh() == 0  # queued just now
    assert RewardModelCheck.objects.count() == 1
    check = RewardModelCheck.objects.get(reward_model=world["rm"])
    long_ago = timezone.now() - timedelta(seconds=staleness.REFRESH_SECONDS + 60)
    RewardModelCheck.objects.filter(pk=check.pk).update(status="succeeded", computed_at=long_ago, updated_at=long_ago)
    Annotation.objects.filter(project=world["project"]).update(created_at=long_ago - timedelta(seconds=1))
    assert staleness.reward_checks_refresh() == 0  # due, but no label since
    task, (a, b, c) = policy_task(world["project"], world["new"], [1, 2, 3])
    labeled(task, [[a], [b], [c]])
    assert staleness.reward_checks_refresh() == 1


# Display and roles --------------------------------------------------------------------------------


def _stale_check(world) -> RewardModelCheck:
    return RewardModelCheck.objects.create(
        reward_model=world["rm"], project=world["project"], status="succeeded", policy=world["new"],
        agreement=0.52, labels=200, pairs=410, computed_at=timezone.now(),
    )


def test_the_dashboard_shows_the_agreement_and_the_stale_hint_to_engineers_only(world, client):
    _stale_check(world)
    project = world["project"]
    client.force_login(world["engineer"])
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="reward-checks"' in page and world["rm"].name in page
    assert "52.0%" in page and "is stale." in page and "collect comparisons" in page
    assert world["new"].name in page and "200 labels, 410 pairs" in page
    client.force_login(world["labeler"])
    assert client.get(f"/projects/{project.pk}/dashboard/").status_code == 403
    assert client.get("/training/models/").status_code == 403
    assert client.post(f"/training/projects/{project.pk}/reward-checks/").status_code == 403
    assert not RewardModelCheck.objects.filter(status="queued").exists()


def test_the_registry_page_and_api_show_the_check_in_the_users_projects_only(world, client, client_for):
    _stale_check(world)
    # A global reward model used by two projects: each engineer sees the check of their own project.
    other = ProjectFactory()
    outsider = member(other, Membership.Role.ENGINEER, username=f"out-{uuid.uuid4().hex[:6]}")
    shared = model_version(name=f"rm-global-{uuid.uuid4().hex[:6]}", kind="reward", path="models/rm-g")
    for project, agreement in ((world["project"], 0.9), (other, 0.3)):
        RewardModelCheck.objects.create(reward_model=shared, project=project, status="succeeded",
                                        agreement=agreement, labels=100, pairs=100, computed_at=timezone.now())
    client.force_login(world["engineer"])
    page = client.get("/training/models/").content.decode()
    assert "52.0%" in page and "Stale:" in page and "90.0%" in page and "30.0%" not in page
    body = client_for(world["engineer"]).get("/api/models/").json()
    by_name = {row["name"]: row for row in body["results"]}
    assert [c["agreement"] for c in by_name[world["rm"].name]["reward_checks"]] == [0.52]
    assert by_name[world["rm"].name]["reward_checks"][0]["stale"] is True
    assert [c["project"] for c in by_name[shared.name]["reward_checks"]] == [world["project"].pk]
    assert by_name[world["new"].name]["reward_checks"] == []
    outsider_view = {r["name"]: r for r in client_for(outsider).get("/api/models/").json()["results"]}
    assert world["rm"].name not in outsider_view
    assert [c["agreement"] for c in outsider_view[shared.name]["reward_checks"]] == [0.3]


def test_the_reward_checks_api_is_for_those_who_train(world, client_for, monkeypatch):
    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda *args, **kw: None)
    project = world["project"]
    url = f"/api/projects/{project.pk}/reward-checks/"
    assert client_for(world["labeler"]).get(url).status_code == 403
    assert client_for(world["labeler"]).get("/api/models/").status_code == 403
    assert client_for(world["labeler"]).post(url).status_code == 403
    stranger = member(ProjectFactory(), Membership.Role.ADMIN)
    assert client_for(stranger).get(url).status_code == 404
    engineer = client_for(world["engineer"])
    assert engineer.get(url).json() == []
    queued = engineer.post(url)
    assert queued.status_code == 202 and [c["status"] for c in queued.json()] == ["queued"]
    assert engineer.post(url).json() == []  # already queued


# The real scoring pipeline --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_check_with_the_real_tiny_reward_model_matches_its_own_scores(world, tiny_reward_model_dir, tmp_path):  # noqa: F811 (the imported fixture)
    project = world["project"]
    rm = model_version(name=f"rm-tiny-{uuid.uuid4().hex[:6]}", kind="reward", project=project,
                       path=str(tiny_reward_model_dir.relative_to(settings.STORAGE_ROOT)))
    check = run_check(project, rm)
    assert check.status == "succeeded", check.message
    assert (check.labels, check.pairs, check.policy_id) == (4, 12, world["new"].pk)
    # The same responses scored by the pipeline directly give the same agreement.
    labels, responses = staleness.newest_labels(project=project, policy=world["new"])
    pairs = [pair for _, _, ranking in labels for pair in staleness.ranking_pairs(ranking, responses)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in staleness.scoring_rows(response_ids=responses)))
    done = subprocess.run(
        [sys.executable, "-m", "training.pipelines.score", "--model", str(tiny_reward_model_dir),
         "--input", str(source), "--output", str(tmp_path / "out.jsonl")],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    scores = {json.loads(line)["id"]: json.loads(line)["score"] for line in (tmp_path / "out.jsonl").read_text().splitlines()}
    assert check.agreement == pytest.approx(staleness.pair_agreement(pairs, scores))
    assert not any((Path(settings.STORAGE_ROOT) / "reward-checks" / str(check.pk)).iterdir())  # temp files removed


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_button_checks_the_reward_model_on_the_real_worker(
    celery_worker_process, tiny_reward_model_dir, client  # noqa: F811
):
    from tests.training.test_active_sampling import wait_for

    project = ProjectFactory(slug=f"stale-{uuid.uuid4().hex[:8]}")
    engineer = member(project, Membership.Role.ENGINEER)
    policy = model_version(name=f"policy-{project.slug}", kind="policy", path="models/pol-w", project=project)
    rm = model_version(name=f"rm-{project.slug}", kind="reward", project=project,
                       path=str(tiny_reward_model_dir.relative_to(settings.STORAGE_ROOT)))
    for _ in range(4):
        task, (a, b, c) = policy_task(project, policy, [1, 2, 3])
        labeled(task, [[a], [b], [c]])
    client.force_login(engineer)
    assert client.post(f"/training/projects/{project.pk}/reward-checks/").status_code == 302

    def finished():
        check = RewardModelCheck.objects.filter(reward_model=rm, project=project).first()
        return check if check and check.status in ("succeeded", "failed") else None

    try:
        check = wait_for(finished, timeout=240, what="the reward-model check")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{celery_worker_process.log_path.read_text()[-4000:]}") from None
    assert check.status == "succeeded", check.message
    assert (check.labels, check.pairs, check.policy_id) == (4, 12, policy.pk)
    assert 0.0 <= check.agreement <= 1.0
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert f"{round(100 * check.agreement, 1)}%" in page and "4 labels, 12 pairs" in page


def test_the_command_shows_the_checks_and_queues_new_ones(world, monkeypatch):
    from io import StringIO

    from django.core.management import CommandError, call_command

    monkeypatch.setattr("training.tasks.reward_check_run.apply_async", lambda *args, **kw: None)
    out = StringIO()
    call_command("check_reward_models", "--project", world["project"].slug, stdout=out)
    assert f"{world['rm'].name}: never checked" in out.getvalue()
    _stale_check(world)
    out = StringIO()
    call_command("check_reward_models", "--project", world["project"].slug, stdout=out)
    assert "52.0% on 200 labels (410 pairs)" in out.getvalue() and "stale" in out.getvalue()
    out = StringIO()
    call_command("check_reward_models", "--project", world["project"].slug, "--now", stdout=out)
    assert "Queued 1 check" in out.getvalue() and "stale, queued." in out.getvalue()
    with pytest.raises(CommandError, match="No project"):
        call_command("check_reward_models", "--project", "nope")
