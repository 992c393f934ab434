"""Every page of the platform runs under the strict Content-Security-Policy with zero violations.

launch_browser (tests/browser.py) fails a test on any violation; this test walks every page a
labeler, a project admin (who also reviews) and an ML engineer open, the API docs and Django
admin, checks that each one was served with the policy, and that its JavaScript really ran
(charts drawn, Swagger UI built).
"""

import pytest
from django.utils import timezone

from annotation.models import Annotation, Membership, ReviewItem, Task
from annotation.reviews.sampling import review_items_enqueue
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, UserFactory, member, model_version
from tests.training.labels import demonstrations_create
from loop import evaluation as evaluations
from loop import generation
from training.models import GenerationJob, MetricPoint, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POLICY = ("default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
          "object-src 'none'", "frame-ancestors 'none'")
CHART = "(id) => !!(window.Chart && Chart.getChart(id) && Chart.getChart(id).data.datasets[0].data.length)"


@pytest.fixture
def site(monkeypatch, settings, tmp_path):
    """One project with something on every page: labels, a finished run with metrics, an A/B evaluation."""
    monkeypatch.setattr("loop.tasks.generation_execute.apply_async", lambda args=None, **kw: None)
    settings.STORAGE_ROOT = tmp_path
    project = ProjectFactory(name="CSP walk")
    boss = UserFactory(username="csp-admin", is_staff=True, is_superuser=True)
    Membership.objects.create(project=project, user=boss, role=Membership.Role.ADMIN)
    labeler = member(project, Membership.Role.LABELER, username="csp-labeler")
    work = demonstrations_create(project=project, n=2)  # the dashboard's timeline and labeler charts
    review_items_enqueue(annotation_ids=[a.pk for a in work], reason="sample")  # the review page
    reviewed = Annotation.objects.create(task=TaskFactory(project=project), labeler=labeler, kind="demonstration",
                                         text="Short.", review_state="rejected")
    ReviewItem.objects.create(project=project, annotation=reviewed, task=reviewed.task, labeler=labeler,
                              reason="sample", status="decided", verdict="rejected", comment="Too short.", reviewer=boss,
                              decided_at=timezone.now())  # the labeler's "Reviews of your work"
    TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION)  # left open for the labeler
    sft = model_version(name="csp-sft", kind="sft", path="models/sft", project=project)
    policy = model_version(name="csp-policy", kind="policy", path="models/policy", project=project)
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=sft, status="succeeded", step=3,
                                     total_steps=3, log_tail="done", created_by=boss)
    MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name="loss", value=3.0 - s) for s in (1, 2, 3)]
                                    + [MetricPoint(run=run, step=s, name="kl", value=s * 6e-9) for s in (1, 2, 3)])
    for text in ("Name a colour.", "Say hello."):
        PromptFactory(project=project, messages=[{"role": "user", "content": text}])
    evaluation = evaluations.evaluation_create(project=project, model_a=sft, model_b=policy, prompt_count=2,
                                               created_by=boss)
    job = GenerationJob.objects.get(evaluation=evaluation)
    generation.generation_claim(job_id=job.pk, worker="test:1")
    first, second = job.prompt_ids
    generation.generation_complete(job=job, outputs=[{first: ["Red."], second: ["Hello."]},
                                                     {first: ["Blue."], second: ["Hi there."]}])
    judged = Task.objects.filter(metadata__evaluation=evaluation.pk).first()
    by_model = {tr.response.model_version_id: tr.response_id for tr in judged.task_responses.select_related("response")}
    Annotation.objects.create(task=judged, labeler=boss, kind="comparison",
                              ranking=[[by_model[sft.pk]], [by_model[policy.pk]]], strength="better")
    Task.objects.filter(pk=judged.pk).update(done=1, status="done")
    return {"project": project, "labeler": labeler, "run": run, "job": job, "evaluation": evaluation}


def visit(browser, page, url: str, ready: str | None = None) -> None:
    """Open url, check it came with the policy and (if given) that its script finished, and no violation so far."""
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    header = response.headers.get("content-security-policy", "")
    assert all(part in header for part in POLICY), f"{url} came without the strict policy: {header!r}"
    page.wait_for_load_state("load")
    if ready:
        page.wait_for_function(ready)
    assert browser.csp_violations == [], url


def test_every_page_runs_under_the_strict_policy(live_server, site):
    base = live_server.url
    project, run, job, evaluation = site["project"].pk, site["run"].pk, site["job"].pk, site["evaluation"].pk
    with launch_browser() as browser:
        errors = []
        labeler = browser.new_context(viewport={"width": 1360, "height": 900})
        labeler.on("weberror", lambda error: errors.append(str(error.error)))
        page = labeler.new_page()
        login(page, base, "csp-labeler", "pass-1234")  # the login page itself is checked here
        assert browser.csp_violations == []
        visit(browser, page, f"{base}/")
        for kind in ("demonstration", "comparison"):
            visit(browser, page, f"{base}/projects/{project}/label/{kind}/")
            page.wait_for_selector("#label-app[data-ready=true], #empty-state")
        assert page.locator("#label-app[data-ready=true]").count() == 1, "no comparison was served"
        assert "Too short." in page.inner_text("#my-reviews")
        # The account pages (token, password), and a refusal: the 403 page is the product's too.
        visit(browser, page, f"{base}/account/", ready="() => !!document.querySelector('main')")
        visit(browser, page, f"{base}/account/password/")
        refused = page.goto(f"{base}/projects/{project}/dashboard/")
        assert refused.status == 403 and "Not allowed" in page.content() and browser.csp_violations == []
        stranger = browser.new_context().new_page()  # logged out: the password reset request
        visit(browser, stranger, f"{base}/account/password/reset/")

        admin = browser.new_context(viewport={"width": 1360, "height": 900})
        admin.on("weberror", lambda error: errors.append(str(error.error)))
        page = admin.new_page()
        login(page, base, "csp-admin", "pass-1234")
        # The project admin's pages; the dashboard draws its charts with the vendored Chart.js.
        visit(browser, page, f"{base}/projects/new/")
        visit(browser, page, f"{base}/projects/{project}/dashboard/",
              ready=f"({CHART})('timeline-chart') && ({CHART})('labelers-chart')")
        assert page.get_attribute("progress.progress", "value") is not None  # a bar that needs no script
        for section in ("import", "settings", "export"):
            visit(browser, page, f"{base}/projects/{project}/{section}/")
        visit(browser, page, f"{base}/projects/{project}/review/",
              ready="() => !!document.querySelector('#review-app[data-ready=true]')")
        # The ML engineer's pages.
        visit(browser, page, f"{base}/training/runs/")
        visit(browser, page, f"{base}/training/runs/new/?project={project}", ready="() => !!document.querySelector('#run-form [name^=config-]')")
        visit(browser, page, f"{base}/training/runs/{run}/", ready=f"() => ({CHART})('chart-loss')")
        assert page.evaluate("Chart.getChart('chart-loss').data.datasets[0].data.length") == 3
        ticks = page.evaluate("Chart.getChart('chart-kl').scales.y.ticks.map(t => t.label)")
        assert ticks and all(len(str(t)) <= 8 for t in ticks), ticks  # 1.2e-8, not 1.200000000E-8
        assert page.get_attribute("[data-role=progress]", "value") == "100.0"
        visit(browser, page, f"{base}/training/models/")
        visit(browser, page, f"{base}/training/generation/")
        visit(browser, page, f"{base}/training/generation/new/")
        visit(browser, page, f"{base}/training/generation/{job}/")
        visit(browser, page, f"{base}/training/evaluations/")
        visit(browser, page, f"{base}/training/evaluations/new/")
        visit(browser, page, f"{base}/training/evaluations/{evaluation}/", ready=f"() => ({CHART})('board-chart')")
        assert page.get_attribute("[data-role=ci-dot]", "x") == "0.0%"  # B, the challenger, lost its 1 comparison
        visit(browser, page, f"{base}/training/projects/{project}/leaderboard/", ready=f"() => ({CHART})('board-chart')")
        # The API docs: Swagger UI, its init script served from the page's own URL, renders every path.
        visit(browser, page, f"{base}/api/docs/", ready="() => document.querySelectorAll('.opblock').length > 10")
        assert "FeedbackLoop API" in page.text_content(".swagger-ui .info .title")
        # Django admin: the index, a changelist and a change form.
        visit(browser, page, f"{base}/admin/", ready="() => !!document.querySelector('#content-main')")
        visit(browser, page, f"{base}/admin/training/trainingrun/")
        visit(browser, page, f"{base}/admin/annotation/project/{project}/change/")
        assert page.locator("#project_form").count() == 1
        assert errors == []
