"""A labeler judges a model-written A/B comparison in Chromium with the keyboard; the admin's
evaluation page, open beside it, shows the win rate move without a reload."""

import pytest

from annotation.models import Annotation, Membership, Task
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, PromptFactory, member, model_version
from loop import evaluation as evaluations
from loop import generation
from training.models import GenerationJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def enqueued(monkeypatch):
    """The generation job 'runs' in the test itself: nothing reaches a broker or a worker."""
    sent = []
    monkeypatch.setattr(
        "loop.tasks.generation_execute.apply_async", lambda args=None, **kw: sent.append(args)
    )
    return sent


def test_a_labeler_judges_an_ab_comparison_and_the_win_rate_moves(live_server, enqueued):
    project = ProjectFactory(name="A/B in the browser", overlap=1)
    admin = member(project, Membership.Role.ADMIN, username="ab-admin")
    labeler = member(project, Membership.Role.LABELER, username="ab-labeler")
    earlier = member(project, Membership.Role.LABELER, username="ab-earlier")
    sft = model_version(name="secret-sft-v1", kind="sft", path="models/sft", project=project)
    rlhf = model_version(name="secret-rlhf-v2", kind="policy", path="models/rlhf", project=project)
    for text in ("Name a warm colour.", "Say something kind."):
        PromptFactory(project=project, messages=[{"role": "user", "content": text}])
    evaluation = evaluations.evaluation_create(project=project, model_a=sft, model_b=rlhf, prompt_count=2,
                                               created_by=admin)
    job = GenerationJob.objects.get(evaluation=evaluation)
    assert enqueued == [[job.pk]]
    generation.generation_claim(job_id=job.pk, worker="test:1")
    first, second = job.prompt_ids
    generation.generation_complete(job=job, outputs=[
        {first: ["Red is warm."], second: ["You did well today."]},
        {first: ["Orange, like a sunset."], second: ["Thank you for your help, it meant a lot."]},
    ])
    tasks = {t.prompt_id: t for t in Task.objects.filter(metadata__evaluation=evaluation.pk)}
    assert len(tasks) == 2
    # An earlier judgement: A (sft) won the first prompt. So the page starts at 100%.
    done = tasks[first]
    by_model = {tr.response.model_version_id: tr.response_id for tr in done.task_responses.select_related("response")}
    Annotation.objects.create(task=done, labeler=earlier, kind="comparison",
                              ranking=[[by_model[sft.pk]], [by_model[rlhf.pk]]], strength="better")
    Task.objects.filter(pk=done.pk).update(done=1, status="done")
    open_task = tasks[second]
    b_response = open_task.task_responses.get(response__model_version=rlhf)

    with launch_browser() as browser:
        errors = []
        admin_context = browser.new_context(viewport={"width": 1360, "height": 900})
        admin_context.on("weberror", lambda error: errors.append(str(error.error)))
        results_page = admin_context.new_page()
        login(results_page, live_server.url, "ab-admin", "pass-1234")
        results_page.goto(f"{live_server.url}/training/evaluations/{evaluation.pk}/")
        before = results_page.text_content("[data-role=win-rate]").strip()
        assert before == "0.0%"  # stated for B, the challenger, which lost the first judgement
        assert results_page.text_content("[data-role=n]").strip() == "1"
        results_page.evaluate("window.__notReloaded = true")

        labeler_context = browser.new_context(viewport={"width": 1360, "height": 900})
        labeler_context.on("weberror", lambda error: errors.append(str(error.error)))
        page = labeler_context.new_page()
        login(page, live_server.url, "ab-labeler", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/label/comparison/")
        page.wait_for_selector("#label-app[data-ready=true]")
        assert int(page.get_attribute("#label-app", "data-task-id")) == open_task.pk
        html = page.content()
        assert "secret-sft-v1" not in html and "secret-rlhf-v2" not in html  # the models stay anonymous
        assert "Thank you for your help" in html and "You did well today." in html
        # The labeler prefers B's answer, wherever it was shown: its number, then "better" (s), then Enter.
        number = page.get_attribute(f"article.response[data-response-id='{b_response.response_id}']", "data-number")
        page.keyboard.press(number)
        page.keyboard.press("s")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#empty-state")

        stored = Annotation.objects.get(task=open_task, labeler=labeler)
        assert stored.ranking[0] == [b_response.response_id] and stored.strength == "better"
        # The admin's page follows by polling: 1 win and 1 loss for B is 50%.
        results_page.wait_for_function(
            "() => document.querySelector('[data-role=win-rate]').textContent.trim() !== '0.0%'", timeout=15_000
        )
        after = results_page.text_content("[data-role=win-rate]").strip()
        assert after == "50.0%" != before
        assert results_page.text_content("[data-role=losses]").strip() == "1"
        assert results_page.text_content("[data-role=tasks-done]").strip() == "2"
        assert results_page.evaluate("window.__notReloaded") is True
        assert results_page.get_attribute("[data-role=ci-dot]", "x") == "50.0%"
        # Every task judged: the evaluation says so, without a reload.
        results_page.wait_for_function(
            "() => document.querySelector('[data-role=eval-status]').textContent.trim() === 'Complete'",
            timeout=15_000,
        )
        # The leaderboard chart was drawn by the vendored Chart.js, with both models rated, each with its
        # bootstrap interval as a bar, on an axis that does not start at 0.
        assert results_page.evaluate("Chart.getChart('board-chart').data.labels.length") == 2
        spans = results_page.evaluate("Chart.getChart('board-chart').data.datasets[0].data")
        assert all(low <= high for low, high in spans)
        assert results_page.evaluate("Chart.getChart('board-chart').scales.x.min") > 0
        # A new evaluation starts from two different models: the newest, and its parent when it has one.
        results_page.goto(f"{live_server.url}/training/evaluations/new/?project={project.pk}")
        chosen_a = results_page.eval_on_selector("select[name=model_a]", "s => s.options[s.selectedIndex].text")
        chosen_b = results_page.eval_on_selector("select[name=model_b]", "s => s.options[s.selectedIndex].text")
        assert chosen_a != chosen_b
        results_page.goto(f"{live_server.url}/training/evaluations/{evaluation.pk}/")
        assert results_page.text_content("[data-role=win-rate]").strip() == "50.0%"
        assert errors == []


def test_the_leaderboard_draws_no_empty_chart_and_its_first_rating_arrives_by_polling(live_server, enqueued):
    project = ProjectFactory(name="Unjudged", overlap=1)
    admin = member(project, Membership.Role.ADMIN, username="board-admin")
    judge = member(project, Membership.Role.LABELER, username="board-judge")
    sft = model_version(name="sft-a", kind="sft", path="models/sft-a", project=project)
    rlhf = model_version(name="rlhf-b", kind="policy", path="models/rlhf-b", project=project)
    PromptFactory(project=project, messages=[{"role": "user", "content": "Say hello."}])
    evaluation = evaluations.evaluation_create(project=project, model_a=sft, model_b=rlhf, prompt_count=1,
                                               created_by=admin)
    job = GenerationJob.objects.get(evaluation=evaluation)
    generation.generation_claim(job_id=job.pk, worker="test:1")
    generation.generation_complete(job=job, outputs=[{job.prompt_ids[0]: ["Hello."]}, {job.prompt_ids[0]: ["Hi!"]}])
    task = Task.objects.get(metadata__evaluation=evaluation.pk)
    by_model = {tr.response.model_version_id: tr.response_id for tr in task.task_responses.select_related("response")}

    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_server.url, admin.username, "pass-1234")
        page.goto(f"{live_server.url}/training/projects/{project.pk}/leaderboard/")
        assert page.is_hidden("figure.board-chart")
        assert page.evaluate("() => Chart.getChart('board-chart') === undefined")
        page.goto(f"{live_server.url}/training/evaluations/{evaluation.pk}/")
        assert page.is_hidden("figure.board-chart")  # no judgement yet: no chart, not an empty axis

        Annotation.objects.create(task=task, labeler=judge, kind="comparison",
                                  ranking=[[by_model[rlhf.pk]], [by_model[sft.pk]]], strength="better")
        Task.objects.filter(pk=task.pk).update(done=1, status="done")
        page.wait_for_function("() => Chart.getChart('board-chart') !== undefined", timeout=15_000)
        assert page.is_visible("figure.board-chart")
        assert sorted(page.evaluate("() => Chart.getChart('board-chart').data.labels")) == ["rlhf-b", "sft-a"]
        links = page.eval_on_selector_all("[data-role=board] tbody a", "els => els.map(a => a.getAttribute('href'))")
        assert sorted(links) == sorted([f"/training/models/{sft.pk}/", f"/training/models/{rlhf.pk}/"])
