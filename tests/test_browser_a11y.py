"""Accessibility: axe-core (the copy the axe-playwright-python package ships) on every page, in the
light and the dark colour scheme, as the role that uses each page. No serious or critical violation.

axe is injected as a script, which the pages' Content-Security-Policy would refuse, so these pages
open in a context that bypasses the policy; tests/test_browser_csp.py checks the policy itself.
"""

import os
from importlib import resources

import pytest

from annotation.models import Annotation, Membership, ReviewItem
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member, model_version
from loop import evaluation as evaluations
from training.models import GenerationJob, MetricPoint, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SERIOUS = {"serious", "critical"}
SHOTS = os.environ.get("FEEDBACKLOOP_A11Y_SCREENSHOTS", "")  # a folder: keep a screenshot of every page
AXE_JS = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def violations(page) -> list[str]:
    page.add_script_tag(content=AXE_JS)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = []
    for v in result["violations"]:
        if v["impact"] in SERIOUS:
            targets = "; ".join(", ".join(node["target"]) for node in v["nodes"][:4])
            found.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])}x): {v['help']} — {targets}")
    return found


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setattr("loop.tasks.generation_execute.apply_async", lambda *a, **k: None)
    project = ProjectFactory(name="Accessible project", overlap=1, review_rate=1.0)
    admin = member(project, Membership.Role.ADMIN, username="a11y-admin")
    labeler = member(project, Membership.Role.LABELER, username="a11y-labeler")
    reviewer = member(project, Membership.Role.REVIEWER, username="a11y-reviewer")
    TaskFactory.create_batch(2, project=project)
    comparison_task(project=project, texts=("One.", "Two.", "Three.", "Four."))
    comparison_task(project=project)
    done = comparison_task(project=project)
    ids = list(done.task_responses.order_by("position").values_list("response_id", flat=True))
    annotation = Annotation.objects.create(task=done, labeler=labeler, kind="comparison",
                                           ranking=[[ids[0]], [ids[1]]], strength="better")
    ReviewItem.objects.create(project=project, annotation=annotation, task=done, labeler=labeler, reason="sample")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    sft = model_version(name="sft-1", kind="sft", path="runs/1/model", parent=base, project=project)
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running", step=3,
                                     total_steps=10, log_tail="step 3 loss=1.5", created_by=admin)
    MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name="loss", value=3.0 - s / 2) for s in (1, 2, 3)])
    run2 = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="succeeded", step=2,
                                      total_steps=2, created_by=admin, config={"learning_rate": 0.01})
    MetricPoint.objects.bulk_create([MetricPoint(run=run2, step=s, name="loss", value=2.0 - s / 3) for s in (1, 2)])
    finished = ProjectFactory(name="Finished project")  # nothing left to label or review: the empty pages
    Membership.objects.create(project=finished, user=admin, role=Membership.Role.ADMIN)
    evaluation = evaluations.evaluation_create(project=project, model_a=base, model_b=sft, prompt_count=2,
                                               created_by=admin) if project.prompts.count() >= 2 else None
    return {
        "project": project, "finished": finished, "admin": admin, "labeler": labeler, "reviewer": reviewer, "run": run, "run2": run2,
        "done": done, "sft": sft,
        "evaluation": evaluation, "job": GenerationJob.objects.order_by("id").first(),
    }


def pages_for(world) -> dict[str, list[str]]:
    p = world["project"].pk
    admin_pages = [
        "/", f"/projects/{p}/dashboard/", f"/projects/{p}/settings/", f"/projects/{p}/import/",
        f"/projects/{p}/export/", "/projects/new/", "/training/runs/", "/training/runs/new/",
        f"/training/runs/{world['run'].pk}/", f"/training/runs/compare/?runs={world['run'].pk},{world['run2'].pk}",
        "/training/models/", f"/training/models/{world['sft'].pk}/", f"/projects/{p}/annotations/", f"/projects/{p}/tasks/{world['done'].pk}/", "/training/generation/",
        "/training/generation/new/", "/training/evaluations/", "/training/evaluations/new/",
        f"/training/projects/{p}/leaderboard/", "/account/", "/account/password/", "/training/no-such-page/",
        f"/projects/{world['finished'].pk}/label/comparison/", f"/projects/{world['finished'].pk}/review/",
        "/api/docs/",
    ]
    if world["evaluation"] is not None:
        admin_pages.append(f"/training/evaluations/{world['evaluation'].pk}/")
    if world["job"] is not None:
        admin_pages.append(f"/training/generation/{world['job'].pk}/")
    return {
        "a11y-labeler": ["/", f"/projects/{p}/label/demonstration/", f"/projects/{p}/label/comparison/",
                         f"/projects/{p}/my-work/", f"/projects/{p}/dashboard/",  # the dashboard is a 403 page
                         f"/projects/{p}/settings/", "/training/runs/", "/account/"],
        "a11y-reviewer": [f"/projects/{p}/review/"],
        "a11y-admin": admin_pages,
    }


def test_no_serious_or_critical_axe_violation_on_any_page_in_either_colour_scheme(live_server, world):
    base = live_server.url
    found = {}
    with launch_browser() as browser:
        # The pages for the signed out: the login and the password reset.
        for scheme in ("light", "dark"):
            context = browser.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1366, "height": 900})
            page = context.new_page()
            for path in ("/login/", "/account/password/reset/", "/account/password/reset/sent/"):
                page.goto(f"{base}{path}")
                found[f"{scheme} {path} signed out"] = violations(page)
            context.close()
        for username, paths in pages_for(world).items():
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    bypass_csp=True, color_scheme=scheme, viewport={"width": 1366, "height": 900}
                )
                page = context.new_page()
                login(page, base, username, "pass-1234")
                for path in paths:
                    page.goto(f"{base}{path}")
                    page.wait_for_load_state("load")
                    found[f"{scheme} {path} as {username}"] = violations(page)
                    if SHOTS:
                        page.screenshot(path=f"{SHOTS}/{scheme}-{username}-{path.strip('/').replace('/', '_') or 'home'}.png")
                context.close()
    bad = {where: v for where, v in found.items() if v}
    assert len(found) >= 40
    assert not bad, "\n".join(f"{where}:\n  " + "\n  ".join(v) for where, v in bad.items())
