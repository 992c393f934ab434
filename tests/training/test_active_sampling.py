"""Active sampling: the scoring pipeline, priorities from score margins, RM-human agreement, and the real worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation import dashboard, services
from annotation.errors import Conflict, InvalidInput
from annotation.models import Annotation, Membership, Project, Task, TaskResponse
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member, model_version
from loop import active_sampling
from training.models import ModelVersion


def reward_version(project=None, name=None) -> ModelVersion:
    return model_version(
        name=name or f"rm-{uuid.uuid4().hex[:8]}", kind=ModelVersion.Kind.REWARD, path="models/rm", project=project
    )


def scores_for(task: Task, values: list[float]) -> dict[int, float]:
    """{response id: score} for the task's responses in display order."""
    ids = task.task_responses.order_by("position").values_list("response_id", flat=True)
    return dict(zip(ids, values))


def shown(task: Task) -> list[int]:
    return list(task.task_responses.order_by("position").values_list("response_id", flat=True))


# Priorities -------------------------------------------------------------------------------------


def test_priority_falls_as_the_margin_grows_and_stays_above_unscored_tasks():
    values = [active_sampling.priority_for_margin(m) for m in (0.0, 0.001, 0.5, 3.0, 1e9)]
    assert values == sorted(values, reverse=True) and len(set(values)) == 5
    assert values[0] == active_sampling.PRIORITY_BASE and values[-1] == 1
    assert active_sampling.priority_for_margin(-0.5) == active_sampling.priority_for_margin(0.5)


@pytest.mark.django_db
def test_scores_store_puts_the_smallest_margin_first_for_claim_next():
    project = ProjectFactory()
    labeler = member(project)
    rm = reward_version(project)
    sure = comparison_task(project=project, texts=("a", "b"))
    unsure = comparison_task(project=project, texts=("c", "d", "e"))
    middling = comparison_task(project=project, texts=("f", "g"))
    unscored = comparison_task(project=project, texts=("h", "i"))
    one_score = comparison_task(project=project, texts=("j", "k"))
    done = comparison_task(project=project, texts=("l", "m"), status=Task.Status.DONE, priority=7)
    scores = {
        **scores_for(sure, [2.0, -1.0]),                 # margin 3.0
        **scores_for(unsure, [0.50, 0.45, -2.0]),        # margin 0.05 between the top two
        **scores_for(middling, [0.1, 0.9]),              # margin 0.8
        **dict(list(scores_for(one_score, [1.0, 0.0]).items())[:1]),
        **scores_for(done, [0.0, 0.0]),
    }
    counts = active_sampling.scores_store(project=project, reward_model=rm, scores=scores)
    assert counts["tasks"] == 3 and counts["task_responses"] == 8

    unsure.refresh_from_db()
    assert unsure.reward_margin == pytest.approx(0.05)
    assert unsure.priority == active_sampling.priority_for_margin(0.05)
    assert TaskResponse.objects.get(task=unsure, response_id=shown(unsure)[0]).reward_score == 0.5
    assert TaskResponse.objects.filter(task=unsure, reward_model=rm, scored_at__isnull=False).count() == 3
    assert Task.objects.get(pk=one_score.pk).reward_margin is None  # one score is no margin
    assert Task.objects.get(pk=done.pk).priority == 7  # closed tasks are left alone
    order = []
    while (task := services.task_claim_next(project=project, labeler=labeler)) is not None:
        order.append(task.pk)
        services.task_skip(task=task, labeler=labeler, reason="ordering test")
    assert order == [unsure.pk, middling.pk, sure.pk, unscored.pk, one_score.pk]


# RM-human agreement -------------------------------------------------------------------------------


def _judge(project, labeler, task, ranking, **extra):
    claimed = services.task_claim_next(project=project, labeler=labeler)
    assert claimed.pk == task.pk
    annotation, _ = services.annotation_submit(
        task=claimed, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": ranking, **extra}
    )
    return annotation


@pytest.mark.django_db
def test_rm_human_agreement_on_a_hand_made_case(client_for):
    project = ProjectFactory(overlap=2)
    admin = member(project, role=Membership.Role.ADMIN)
    ann, ben = member(project, username="ann"), member(project, username="ben")
    rm = reward_version(project, name="rm-hand")
    three = comparison_task(project=project, texts=("x", "y", "z"))  # scores 3 > 2 > 1
    pair = comparison_task(project=project, texts=("p", "q"))  # scores q 5 > p 4
    plain = comparison_task(project=project, texts=("u", "v"))  # never scored
    active_sampling.scores_store(
        project=project, reward_model=rm, scores={**scores_for(three, [3.0, 2.0, 1.0]), **scores_for(pair, [4.0, 5.0])}
    )
    x, y, z = shown(three)
    p, q = shown(pair)
    # Claims go by margin: the pair (1.0) and the triple (1.0) tie; then id order. Judge in claim order.
    agree = _judge(project, ann, three, [[x], [y], [z]])            # top agrees, 3 of 3 pairs
    mixed = _judge(project, ben, three, [[y], [x, z]])              # top disagrees; y>x no, y>z yes: 1 of 2
    tie_top = _judge(project, ann, pair, [[p, q]])                  # a tie including q: top agrees, no pairs
    all_bad = _judge(project, ben, pair, [], all_bad=True)          # no ranking: left out
    _judge(project, ann, plain, [[shown(plain)[0]], [shown(plain)[1]]], strength="better")  # unscored: left out

    assert (agree.reward_top_agrees, agree.reward_pairs, agree.reward_pairs_agreeing) == (True, 3, 3)
    assert (mixed.reward_top_agrees, mixed.reward_pairs, mixed.reward_pairs_agreeing) == (False, 2, 1)
    assert (tie_top.reward_top_agrees, tie_top.reward_pairs) == (True, 0)
    assert all_bad.reward_top_agrees is None
    assert Annotation.objects.filter(project=project, reward_top_agrees__isnull=True).count() == 2

    # One moment for all, so the chart's single bucket does not depend on a minute turning mid-test.
    Annotation.objects.filter(project=project).update(created_at=timezone.now())
    numbers = dashboard.dashboard_reward_agreement(project=project)
    assert (numbers["annotations"], numbers["top_agreeing"], numbers["top_percent"]) == (3, 2, 66.7)
    assert (numbers["pairs"], numbers["pairs_agreeing"], numbers["pairs_percent"]) == (5, 4, 80.0)
    assert numbers["timeline"]["unit"] == "minute"  # work within a minute is counted per minute
    assert numbers["timeline"]["annotations"] == [3]
    assert numbers["timeline"]["top_percent"] == [66.7] and numbers["timeline"]["pairs_percent"] == [80.0]

    project.reward_model = rm
    project.save()
    page = client_for(admin)
    page.force_login(admin)
    html = page.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'data-stat="rm-top">66.7%' in html and 'data-stat="rm-pairs">80.0%' in html
    assert "rm-hand" in html and "2 tasks scored" in html
    assert "Prioritise by reward-model uncertainty" in html
    assert '"reward_agreement": {"unit": "minute"' in html  # the chart's series


# Setting the reward model and starting a scoring -----------------------------------------------------


@pytest.mark.django_db
def test_reward_model_is_set_by_patch_with_field_errors(client_for):
    project = ProjectFactory()
    admin, labeler = member(project, role=Membership.Role.ADMIN), member(project)
    mine, global_rm = reward_version(project), reward_version(None)
    theirs = reward_version(ProjectFactory())
    sft = model_version(name="sft-x", kind=ModelVersion.Kind.SFT, path="models/sft", project=project)
    api = client_for(admin)
    url = f"/api/projects/{project.pk}/"
    for bad in (sft.pk, theirs.pk, 10**9, "x"):
        response = api.patch(url, {"reward_model": bad}, format="json")
        assert response.status_code == 400, bad
        assert "reward_model" in json.dumps(response.json())
        assert Project.objects.get(pk=project.pk).reward_model_id is None
    for good in (mine.pk, global_rm.pk):
        response = api.patch(url, {"reward_model": good}, format="json")
        assert response.status_code == 200 and response.json()["reward_model"] == good
    assert client_for(labeler).patch(url, {"reward_model": mine.pk}, format="json").status_code == 403
    assert api.patch(url, {"reward_model": None}, format="json").json()["reward_model"] is None
    assert client_for(member(ProjectFactory())).patch(url, {"reward_model": None}, format="json").status_code == 404


@pytest.mark.django_db
def test_schedule_needs_a_reward_model_and_runs_one_at_a_time(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("loop.tasks.active_sampling_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    project = ProjectFactory()
    with pytest.raises(InvalidInput) as error:
        active_sampling.active_sampling_schedule(project=project)
    assert error.value.field == "reward_model"
    project.reward_model = reward_version(project)
    project.save()
    with django_capture_on_commit_callbacks(execute=True):
        active_sampling.active_sampling_schedule(project=project)
    assert sent == [(project.pk, project.reward_model_id)]
    assert project.scoring_status == Project.ScoringStatus.QUEUED
    with pytest.raises(Conflict):
        active_sampling.active_sampling_schedule(project=project)
    assert len(sent) == 1
    # A queued message that never ran (a lost message) does not block the button for ever.
    Project.objects.filter(pk=project.pk).update(scoring_updated_at=timezone.now() - timedelta(minutes=11))
    with django_capture_on_commit_callbacks(execute=True):
        active_sampling.active_sampling_schedule(project=project)
    assert len(sent) == 2
    # A queued scoring whose reward model changed meanwhile ends failed, not stuck.
    project.reward_model = reward_version(project)
    project.save()
    assert active_sampling.active_sampling_execute(project_id=project.pk, reward_model_id=sent[0][1]) == "skipped"
    project.refresh_from_db()
    assert project.scoring_status == Project.ScoringStatus.FAILED and "changed" in project.scoring_message


@pytest.mark.django_db
def test_after_new_tasks_schedules_only_with_a_reward_model_and_never_raises(monkeypatch):
    sent = []
    monkeypatch.setattr("loop.tasks.active_sampling_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    project = ProjectFactory()
    assert active_sampling.active_sampling_after_new_tasks(project=project) is False
    project.reward_model = reward_version(project)
    project.save()
    assert active_sampling.active_sampling_after_new_tasks(project=project) is True
    assert active_sampling.active_sampling_after_new_tasks(project=project) is False  # one is queued already
    assert Project.objects.get(pk=project.pk).scoring_status == "queued"


@pytest.mark.django_db
def test_settings_page_sets_the_reward_model_and_its_button_queues_scoring(client, monkeypatch):
    sent = []
    monkeypatch.setattr("loop.tasks.active_sampling_run.apply_async", lambda args=None, **kw: sent.append(tuple(args)))
    project = ProjectFactory()
    admin, labeler = member(project, role=Membership.Role.ADMIN), member(project)
    rm = reward_version(project, name="rm-settings")
    reward_version(ProjectFactory(), name="rm-elsewhere")
    client.force_login(admin)
    url = f"/projects/{project.pk}/settings/"
    page = client.get(url).content.decode()
    assert "rm-settings" in page and "rm-elsewhere" not in page
    form = {"name": project.name, "guidelines": "", "overlap": 1, "lease_seconds": 600, "reward_model": rm.pk}
    assert client.post(url, form).status_code == 302
    assert Project.objects.get(pk=project.pk).reward_model_id == rm.pk
    prioritise = f"/projects/{project.pk}/prioritise/"
    response = client.post(prioritise, {"next": "dashboard"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/dashboard/"
    assert "Scoring queued" in response.content.decode()
    assert Project.objects.get(pk=project.pk).scoring_status == "queued"
    again = client.post(prioritise, follow=True).content.decode()
    assert "scoring this project" in again
    client.force_login(labeler)
    assert client.post(prioritise).status_code == 403


# The scoring pipeline and the real worker -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_reward_model_dir(tiny_base_model_dir) -> Path:
    """The tiny base model with a (fresh, seeded) score head: AutoModelForSequenceClassification, num_labels=1."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = tiny_base_model_dir.parent / "tiny-reward"
    if not (target / "config.json").exists():
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model_dir, num_labels=1)
        model.save_pretrained(target)
        AutoTokenizer.from_pretrained(tiny_base_model_dir).save_pretrained(target)
    return target


def _score_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.pipelines.score", *args], cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_scoring_pipeline_scores_each_row_in_order(tiny_reward_model_dir, tmp_path):
    chat = [{"role": "user", "content": "Name a prime number."}]
    texts = ["Seven is prime.", "Seven is prime.", "Nine.", "I like rivers and the colour blue very much."]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"r{i}", "messages": chat + [{"role": "assistant", "content": t}]}) + "\n"
                              for i, t in enumerate(texts)))
    config = tmp_path / "score.json"
    config.write_text(json.dumps({"model_path": str(tiny_reward_model_dir), "input_file": str(source),
                                  "output_file": str(tmp_path / "out" / "scores.jsonl"), "batch_size": 3}))
    done = _score_cli(["--config", str(config)])
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["start", "progress", "progress", "done"]
    assert [e["step"] for e in events[1:3]] == [3, 4] and events[0]["total"] == 4
    rows = [json.loads(line) for line in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    scores = [r["score"] for r in rows]
    assert all(isinstance(s, float) for s in scores)
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)  # the same text scores the same, batched or not
    assert len({round(s, 5) for s in scores}) == 3
    assert events[-1]["metrics"]["rows"] == 4

    source.write_text('{"id": 1, "messages": "not a chat"}\n')
    failed = _score_cli(["--model", str(tiny_reward_model_dir), "--input", str(source), "--output", str(tmp_path / "x")])
    assert failed.returncode != 0
    error = [json.loads(line) for line in failed.stdout.splitlines() if line.startswith('{"event": "error"')]
    assert error and "row 1: messages" in error[0]["message"]
    bad_config = _score_cli(["--model", str(tiny_reward_model_dir), "--input", str(source), "--output", "o",
                             "--batch-size", "0"])
    assert bad_config.returncode == 2 and '"field": "batch_size"' in bad_config.stdout


@pytest.mark.slow
@pytest.mark.django_db
def test_a_scoring_that_fails_says_why_and_changes_no_priority():
    project = ProjectFactory()
    project.reward_model = ModelVersion.objects.create(name="rm-missing", kind="reward", path="models/missing-rm")
    project.scoring_status = Project.ScoringStatus.QUEUED
    project.save()
    task = comparison_task(project=project, texts=("a", "b"), priority=3)
    outcome = active_sampling.active_sampling_execute(project_id=project.pk, reward_model_id=project.reward_model_id)
    assert outcome == "failed"
    project.refresh_from_db()
    assert project.scoring_status == "failed" and project.scoring_message.startswith("Scoring failed with rm-missing")
    assert "missing-rm" in project.scoring_message
    task.refresh_from_db()
    assert (task.priority, task.reward_margin) == (3, None)
    assert not TaskResponse.objects.filter(task=task, reward_score__isnull=False).exists()
    # Delivered again: nothing queued any more, so nothing runs.
    assert active_sampling.active_sampling_execute(project_id=project.pk, reward_model_id=project.reward_model_id) == "skipped"


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_active_sampling_through_the_real_worker_puts_the_least_certain_task_first(
    celery_worker_process, tiny_reward_model_dir, client
):
    project = ProjectFactory(slug=f"active-{time.monotonic_ns()}")
    admin, labeler = member(project, role=Membership.Role.ADMIN), member(project)
    rm = model_version(name=f"rm-{project.slug}", kind=ModelVersion.Kind.REWARD,
                                     path=str(tiny_reward_model_dir.relative_to(settings.STORAGE_ROOT)), project=project)
    tasks = [
        comparison_task(project=project, texts=("Seven is prime.", "I like rivers and the colour blue.")),
        comparison_task(project=project, texts=("Nine.", "Two is the only even prime.", "Blue.")),
        # The same words twice: the reward model cannot tell them apart, margin 0. Made last, so
        # without active sampling it would be claimed last.
        comparison_task(project=project, texts=("Eleven is prime.", "Eleven is prime.")),
    ]
    TaskFactory(project=project)  # a demonstration task is never scored
    client.force_login(admin)
    url = f"/projects/{project.pk}/settings/"
    form = {"name": project.name, "guidelines": "", "overlap": 1, "lease_seconds": 600, "reward_model": rm.pk}
    assert client.post(url, form).status_code == 302
    assert client.post(f"/projects/{project.pk}/prioritise/").status_code == 302

    def finished():
        project.refresh_from_db()
        return project.scoring_status in ("succeeded", "failed")

    try:
        wait_for(finished, timeout=240, what="the scoring job")
    except AssertionError as exc:
        state = f"{project.scoring_status}: {project.scoring_message}"
        raise AssertionError(f"{exc}\n{state}\n{celery_worker_process.log_path.read_text()[-4000:]}") from None
    assert project.scoring_status == "succeeded", project.scoring_message
    assert "Scored 7 responses" in project.scoring_message and "3 open comparison tasks" in project.scoring_message

    links = TaskResponse.objects.filter(task__project=project)
    assert links.count() == 7 and not links.filter(reward_score__isnull=True).exists()
    assert set(links.values_list("reward_model_id", flat=True)) == {rm.pk}
    margins = {t.pk: t.reward_margin for t in Task.objects.filter(pk__in=[t.pk for t in tasks])}
    assert margins[tasks[2].pk] == pytest.approx(0.0, abs=1e-5)
    assert all(margins[t.pk] > 1e-4 for t in tasks[:2])
    expected = sorted((t.pk for t in tasks), key=lambda pk: (-active_sampling.priority_for_margin(margins[pk]), pk))
    assert expected[0] == tasks[2].pk

    order = []
    while (task := services.task_claim_next(project=project, labeler=labeler, kind="comparison")) is not None:
        order.append(task.pk)
        services.task_skip(task=task, labeler=labeler, reason="ordering")
    assert order == expected
    assert not any((Path(settings.STORAGE_ROOT) / "scoring" / str(project.pk)).iterdir())  # temp files removed
