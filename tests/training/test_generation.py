"""Generation jobs: validation before queueing, access, task creation, cancel, and a run through a real worker."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from annotation import export_fast
from annotation.models import Membership, Response, ShownResponses, Task, TaskResponse
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, UserFactory, member, model_version
from loop import generation
from training.models import GenerationJob

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def project():
    return ProjectFactory(slug="gen", overlap=2)


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="gina")


@pytest.fixture
def prompts(project):
    return [PromptFactory(project=project) for _ in range(4)]


@pytest.fixture
def model(db):
    return model_version(name="tiny-sft", kind="sft", path="models/tiny")


@pytest.fixture
def enqueued(monkeypatch):
    """Every generation_execute message that would reach the broker."""
    sent = []
    monkeypatch.setattr(
        "loop.tasks.generation_execute.apply_async", lambda args=None, **kw: sent.append(args)
    )
    return sent


def generate(client, project, **body):
    return client.post(f"/api/projects/{project.pk}/generate/", body, format="json")


# Validation: a 400 that names the field, and nothing queued ---------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"k": 1}, "k"),
        ({"k": 9}, "k"),
        ({"k": "four"}, "k"),
        ({"k": 2.5}, "k"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"model_version": None}, "model_version"),
        ({"model_version": 99999}, "model_version"),
        ({"prompt_count": None}, "prompt_count"),
        ({"prompt_count": 0}, "prompt_count"),
        ({"prompt_count": 50}, "prompt_count"),
        ({"prompt_ids": []}, "prompt_ids"),
        ({"prompt_ids": ["a"]}, "prompt_ids"),
        ({"prompt_ids": [1], "prompt_count": 2}, "prompt_ids"),
    ],
)
def test_bad_input_names_the_field_and_queues_nothing(
    client_for, project, admin, prompts, model, enqueued, django_capture_on_commit_callbacks, change, field
):
    body = {"model_version": model.pk, "k": 4, "prompt_count": 2, **change}
    body = {key: value for key, value in body.items() if value is not None}
    with django_capture_on_commit_callbacks(execute=True) as captured:
        response = generate(client_for(admin), project, **body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["detail"]
    assert GenerationJob.objects.count() == 0
    assert captured == [] and enqueued == []


@pytest.mark.django_db
def test_prompts_of_another_project_are_refused(client_for, project, admin, prompts, model, enqueued):
    foreign = PromptFactory(project=ProjectFactory())
    response = generate(client_for(admin), project, model_version=model.pk, k=2, prompt_ids=[prompts[0].pk, foreign.pk])
    assert response.status_code == 400
    assert response.json()["field"] == "prompt_ids"
    assert str(foreign.pk) in response.json()["detail"]
    assert GenerationJob.objects.count() == 0 and enqueued == []


@pytest.mark.django_db
def test_a_reward_model_or_another_projects_model_cannot_generate(client_for, project, admin, prompts, enqueued):
    reward = model_version(name="rm", kind="reward", path="models/rm", project=project)
    response = generate(client_for(admin), project, model_version=reward.pk, k=2, prompt_count=1)
    assert response.status_code == 400 and response.json()["field"] == "model_version"
    assert "reward" in response.json()["detail"]
    other = model_version(name="theirs", kind="sft", path="m", project=ProjectFactory())
    response = generate(client_for(admin), project, model_version=other.pk, k=2, prompt_count=1)
    assert response.status_code == 400 and response.json()["field"] == "model_version"
    assert GenerationJob.objects.count() == 0 and enqueued == []


@pytest.mark.django_db
def test_a_project_without_prompts_says_so(client_for, project, admin, model, enqueued):
    response = generate(client_for(admin), project, model_version=model.pk, k=2, prompt_count=1)
    assert response.status_code == 400
    assert response.json() == {"detail": "The project has no prompts: import some first.", "field": "prompt_count"}
    assert enqueued == []


# Access -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_access(client_for, project, admin, prompts, model, enqueued):
    labeler = member(project, Membership.Role.LABELER, username="lab")
    stranger = UserFactory(username="stranger")
    assert generate(client_for(stranger), project, model_version=model.pk, k=2, prompt_count=1).status_code == 404
    assert generate(client_for(labeler), project, model_version=model.pk, k=2, prompt_count=1).status_code == 403
    assert GenerationJob.objects.count() == 0
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    engineer = member(project, Membership.Role.ENGINEER, username="eng")
    assert client_for(stranger).get(f"/api/generation-jobs/{job.pk}/").status_code == 404
    assert client_for(stranger).get("/api/generation-jobs/").status_code == 403
    # Labelers see nothing of jobs: not the list, not a job, not the leaderboard of models.
    assert client_for(labeler).get(f"/api/generation-jobs/{job.pk}/").status_code == 404
    assert client_for(labeler).get("/api/generation-jobs/").status_code == 403
    assert client_for(labeler).post(f"/api/generation-jobs/{job.pk}/cancel/").status_code == 404
    assert client_for(stranger).post(f"/api/generation-jobs/{job.pk}/cancel/").status_code == 404
    assert GenerationJob.objects.get(pk=job.pk).status == "queued"
    assert client_for(labeler).get(f"/api/projects/{project.pk}/leaderboard/").status_code == 403
    assert client_for(stranger).get(f"/api/projects/{project.pk}/leaderboard/").status_code == 404
    assert [j["id"] for j in client_for(engineer).get("/api/generation-jobs/").json()["results"]] == [job.pk]
    assert client_for(engineer).get(f"/api/projects/{project.pk}/leaderboard/").status_code == 200


# Starting, cancelling ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_request_queues_one_job_after_commit(
    client_for, project, admin, prompts, model, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = generate(client_for(admin), project, model_version=model.pk, k=3, temperature=0.8, top_p=0.9,
                            max_new_tokens=20, prompt_ids=[prompts[2].pk, prompts[0].pk])
    assert response.status_code == 202, response.content
    body = response.json()
    job = GenerationJob.objects.get()
    assert enqueued == [[job.pk]]
    assert body["id"] == job.pk and body["status"] == "queued" and body["prompts"] == 2
    assert job.prompt_ids == [prompts[2].pk, prompts[0].pk]
    assert (job.k, job.temperature, job.top_p, job.max_new_tokens) == (3, 0.8, 0.9, 20)
    assert job.total_steps == 2 and job.created_by == admin and job.model_version == model


@pytest.mark.django_db
def test_prompt_count_takes_prompts_without_a_comparison_first(project, admin, prompts, model):
    for prompt in prompts[:3]:
        TaskFactory(project=project, prompt=prompt, kind=Task.Kind.COMPARISON)
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=2, created_by=admin)
    assert job.prompt_ids[0] == prompts[3].pk  # the one fresh prompt comes first
    assert len(set(job.prompt_ids)) == 2 and set(job.prompt_ids) <= {p.pk for p in prompts}


@pytest.mark.django_db
def test_cancel_a_queued_job(client_for, project, admin, prompts, model):
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    response = client_for(admin).post(f"/api/generation-jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert generation.generation_claim(job_id=job.pk, worker="w:1") is None  # a late delivery does nothing
    response = client_for(admin).post(f"/api/generation-jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


@pytest.mark.django_db
def test_claim_is_idempotent_and_a_lost_workers_job_is_queued_again(
    project, admin, prompts, model, enqueued, django_capture_on_commit_callbacks
):
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    assert generation.generation_claim(job_id=job.pk, worker="there:1") is not None
    assert generation.generation_claim(job_id=job.pk, worker="there:1") is None  # the same delivery again
    GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2), step=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert generation.generation_jobs_recover_lost() == 1
    job.refresh_from_db()
    assert (job.status, job.step, job.recoveries) == ("queued", 0, 1) and "worker there:1 lost" in job.log_tail
    assert enqueued[-1] == [job.pk]
    assert generation.generation_claim(job_id=job.pk, worker="fresh:2") is not None


# Making the tasks -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_complete_makes_shuffled_comparison_tasks_and_skips_short_prompts(project, admin, prompts, model):
    job = generation.generation_create(
        project=project, model_version=model, k=4, prompt_ids=[p.pk for p in prompts], created_by=admin, seed=7
    )
    generation.generation_claim(job_id=job.pk, worker="here:1")
    outputs = [{
        prompts[0].pk: ["one", "two", "three", "four"],
        prompts[1].pk: ["same", " same ", "other", "", "third"],  # a duplicate (after strip) and an empty one
        prompts[2].pk: ["alone", "alone"],  # one distinct response: no task
        # prompts[3]: the sampler wrote nothing for it
    }]
    job = generation.generation_complete(job=job, outputs=outputs)
    assert job.status == "succeeded"
    assert (job.tasks_created, job.responses_created, job.prompts_skipped) == (2, 7, 2)
    assert job.duplicates_dropped == 2 and job.step == job.total_steps
    tasks = list(Task.objects.filter(metadata__generation_job=job.pk).order_by("id"))
    assert [t.prompt_id for t in tasks] == [prompts[0].pk, prompts[1].pk]
    orders = []
    for task in tasks:
        assert task.kind == "comparison" and task.required == 2 and task.status == "open"
        shown = list(task.task_responses.order_by("position").select_related("response"))
        texts = [tr.response.text for tr in shown]
        assert len(texts) == len(set(texts))
        assert [tr.position for tr in shown] == list(range(len(shown)))
        assert all(tr.response.source == Response.Source.MODEL and tr.response.model_version_id == model.pk
                   for tr in shown)
        orders.append(texts)
    assert sorted(orders[0]) == sorted(["one", "two", "three", "four"])
    assert sorted(orders[1]) == sorted(["same", "other", "third"])
    assert orders[0] != ["one", "two", "three", "four"]  # the display order is shuffled (seeded)
    # ... and reproducible from the job's seed.
    expected = generation.display_order(job=job, prompt_id=prompts[0].pk, n=4)
    assert orders[0] == [["one", "two", "three", "four"][i] for i in expected]
    # Each task's list for the raw export is stored with its links where the database keeps them.
    if connection.vendor == "postgresql":
        for task in tasks:
            assert ShownResponses.objects.get(task=task).json == export_fast._shown({task.pk})[task.pk]
    # Completing again (a late duplicate) creates nothing more.
    generation.generation_complete(job=job, outputs=outputs)
    assert Task.objects.count() == 2


@pytest.mark.django_db
def test_a_job_cancelled_before_it_completes_creates_no_tasks(project, admin, prompts, model):
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    generation.generation_claim(job_id=job.pk, worker="here:1")
    generation.generation_cancel(job=job)
    job = generation.generation_complete(job=job, outputs=[{job.prompt_ids[0]: ["a", "b"]}])
    assert job.status == "cancelling" and Task.objects.count() == 0 and Response.objects.count() == 0


@pytest.mark.django_db
def test_the_labeler_payload_hides_the_model(client_for, project, admin, prompts, model):
    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    generation.generation_claim(job_id=job.pk, worker="here:1")
    generation.generation_complete(job=job, outputs=[{job.prompt_ids[0]: ["first text", "second text"]}])
    labeler = member(project, Membership.Role.LABELER, username="blind")
    body = client_for(labeler).post(f"/api/projects/{project.pk}/next/?kind=comparison").json()
    assert sorted(r["text"] for r in body["responses"]) == ["first text", "second text"]
    assert all(set(r) == {"id", "text"} for r in body["responses"])
    assert "tiny-sft" not in str(body) and "model" not in str(body).replace("model_", "")
    from django.test import Client

    page = Client()
    page.force_login(labeler)
    html = page.get(f"/projects/{project.pk}/label/comparison/").content.decode()
    assert "first text" in html and "tiny-sft" not in html and "generation_job" not in html


# Through a real Celery worker -------------------------------------------------------------------------------


def wait_final(job_id: int, worker, timeout: float = 180) -> GenerationJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = GenerationJob.objects.get(pk=job_id)
        if job.status in FINAL:
            return job
        time.sleep(0.25)
    job = GenerationJob.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.status}\n{job.log_tail}\n{worker.log_path.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_generate_through_the_worker_makes_comparison_tasks(client_for, celery_worker_process, tiny_base_model):
    project = ProjectFactory(slug=f"gen-e2e-{time.monotonic_ns()}", overlap=2)
    admin = member(project, Membership.Role.ADMIN, username="gen-admin")
    chats = ["Tell me about the weather.", "What does a farmer do?", "Describe a market day."]
    for i, text in enumerate(chats):
        PromptFactory(project=project, messages=[{"role": "user", "content": text}], external_id=f"e2e-{i}")
    response = generate(client_for(admin), project, model_version=tiny_base_model.pk, k=3, temperature=1.0,
                        top_p=0.95, max_new_tokens=16, prompt_count=3, seed=3)
    assert response.status_code == 202, response.content
    job = wait_final(response.json()["id"], celery_worker_process)
    assert job.status == "succeeded", f"{job.error}\n{job.log_tail}"
    body = client_for(admin).get(f"/api/generation-jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0 and body["step"] == body["total_steps"] == 3
    assert body["tasks_created"] == job.tasks_created == 3 - job.prompts_skipped
    assert job.tasks_created >= 2, job.log_tail  # the tiny model at temperature 1 rarely repeats itself
    assert "created" in body["log_tail"]
    tasks = Task.objects.filter(project=project, kind="comparison")
    assert tasks.count() == job.tasks_created
    shuffled = False
    for task in tasks:
        assert task.metadata == {"generation_job": job.pk} and task.required == 2
        shown = list(TaskResponse.objects.filter(task=task).order_by("position").select_related("response"))
        assert 2 <= len(shown) <= 3
        texts = [tr.response.text for tr in shown]
        assert len(set(texts)) == len(texts) and all(t.strip() == t and t for t in texts)
        assert {tr.response.source for tr in shown} == {"model"}
        assert {tr.response.model_version_id for tr in shown} == {tiny_base_model.pk}
        created = sorted(shown, key=lambda tr: tr.response_id)
        shuffled |= [tr.response_id for tr in shown] != [tr.response_id for tr in created]
    assert shuffled, "every task shows its responses in creation order: the display order is not random"


@pytest.mark.django_db
def test_generate_command_queues_a_job(project, admin, prompts, model, enqueued, django_capture_on_commit_callbacks,
                                       capsys):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("generate", "--project", project.slug, "--model", model.name, "--k", "3", "--prompts", "2",
                     "--temperature", "0.9")
    job = GenerationJob.objects.get()
    assert (job.k, job.temperature, len(job.prompt_ids), job.created_by) == (3, 0.9, 2, None)
    assert enqueued == [[job.pk]]
    assert f"Generation job {job.pk}" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="k"):
        call_command("generate", "--project", project.slug, "--model", model.name, "--k", "12")
    with pytest.raises(CommandError, match="No model"):
        call_command("generate", "--project", project.slug, "--model", "nope", "--k", "2")
    assert GenerationJob.objects.count() == 1


# Pages ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_generation_pages(client, project, admin, prompts, model, enqueued, django_capture_on_commit_callbacks):
    labeler = member(project, Membership.Role.LABELER, username="pagelab")
    stranger = UserFactory(username="pagestranger")
    client.force_login(admin)
    form = client.get(f"/training/generation/new/?project={project.pk}")
    assert form.status_code == 200 and b'name="k"' in form.content
    assert "Generate" in client.get("/training/runs/").content.decode()  # the training nav links here
    bad = client.post("/training/generation/new/", {"project": project.pk, "model": model.pk, "k": 12,
                                                     "prompt_count": 2, "temperature": 1, "top_p": 0.9,
                                                     "max_new_tokens": 16, "seed": 0})
    assert bad.status_code == 400 and "Nothing was started" in bad.content.decode()
    assert 'data-field="k"' in bad.content.decode() and "k must be" in bad.content.decode()
    assert GenerationJob.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/training/generation/new/", {"project": project.pk, "model": model.pk, "k": 3,
                                                          "prompt_count": 2, "temperature": 1, "top_p": 0.9,
                                                          "max_new_tokens": 16, "seed": 0})
    job = GenerationJob.objects.get()
    assert done.status_code == 302 and done.url == f"/training/generation/{job.pk}/"
    assert enqueued == [[job.pk]]
    page = client.get(done.url).content.decode()
    assert f"/api/generation-jobs/{job.pk}/" in page and 'data-role="progress"' in page and "Cancel job" in page
    assert f"#{job.pk}" in client.get("/training/generation/").content.decode()

    client.force_login(labeler)
    assert client.get(f"/training/generation/{job.pk}/").status_code == 404
    assert client.get("/training/generation/").status_code == 403
    assert client.get(f"/training/generation/new/?project={project.pk}").status_code == 403
    client.force_login(stranger)
    assert client.get(f"/training/generation/{job.pk}/").status_code == 404
    assert client.get(f"/training/generation/new/?project={project.pk}").status_code == 404
    assert client.get("/training/generation/").status_code == 403


@pytest.mark.django_db
def test_a_new_round_is_queued_for_reward_model_scoring_but_an_evaluation_is_not(project, admin, prompts, model):
    from annotation.models import Project
    from loop import generation_runner

    job = generation.generation_create(project=project, model_version=model, k=2, prompt_count=1, created_by=admin)
    generation.generation_claim(job_id=job.pk, worker="here:1")
    job = generation.generation_complete(job=job, outputs=[{job.prompt_ids[0]: ["a", "b"]}])
    generation_runner._prioritise(job)  # no reward model: nothing happens
    assert Project.objects.get(pk=project.pk).scoring_status == ""
    reward = model_version(name="rm", kind="reward", path="rm", project=project)
    Project.objects.filter(pk=project.pk).update(reward_model=reward)
    generation_runner._prioritise(job)
    assert Project.objects.get(pk=project.pk).scoring_status == "queued"
    assert "queued reward-model scoring" in GenerationJob.objects.get(pk=job.pk).log_tail
    Project.objects.filter(pk=project.pk).update(scoring_status="")
    job.evaluation_id = 1  # an evaluation's tasks keep their order
    generation_runner._prioritise(job)
    assert Project.objects.get(pk=project.pk).scoring_status == ""
