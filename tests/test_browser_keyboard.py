"""Every control is reachable by Tab and shows where the focus is, on the pages people work on most."""

import pytest

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Visible, enabled controls that a keyboard user must be able to reach.
CONTROLS = """() => Array.from(document.querySelectorAll(
  'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled])'
)).filter(el => el.offsetParent !== null && !el.closest('[hidden], dialog:not([open]), [inert]')
              && !(el.closest('details:not([open])') && !el.closest('summary'))
              && getComputedStyle(el).visibility !== 'hidden')
  .map(el => el.id || el.name || (el.textContent || '').trim().slice(0, 40) || el.outerHTML.slice(0, 60))"""
# What has the focus now, and whether anything shows it (an outline or a ring).
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const label = el.closest('label');
  const ring = s => (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  return {name: el.id || el.name || (el.textContent || '').trim().slice(0, 40) || el.outerHTML.slice(0, 60),
          visible: ring(style) || (label !== null && ring(getComputedStyle(label)))};
}"""


def tab_through(page, limit: int = 160) -> dict[str, bool]:
    seen = {}
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        if focused["name"] in seen and len(seen) > 3 and focused["name"] == next(iter(seen)):
            break  # back at the start
        seen.setdefault(focused["name"], focused["visible"])
    return seen


def keyboard_problems(page, base_url: str, path: str) -> list[str]:
    """Open `path` and Tab through it: the controls Tab never reaches and those it reaches with no visible focus."""
    page.goto(base_url + path)
    page.wait_for_load_state("load")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    controls = page.evaluate(CONTROLS)
    reached = tab_through(page, limit=len(controls) + 20)
    missed = [c for c in controls if c not in reached]
    hidden_focus = [name for name, visible in reached.items() if not visible]
    problems = []
    if missed:
        problems.append(f"{path}: Tab never reaches {missed}")
    if hidden_focus:
        problems.append(f"{path}: no visible focus on {hidden_focus}")
    return problems


def test_tab_reaches_every_control_with_a_visible_focus(live_server):
    project = ProjectFactory(name="Keyboard project", overlap=1)
    comparison_task(project=project, texts=("One.", "Two.", "Three."))
    TaskFactory(project=project)
    labeler = member(project, username="tab-labeler")
    admin = member(project, Membership.Role.ADMIN, username="tab-admin")
    pages = {
        labeler.username: ["/", f"/projects/{project.pk}/label/comparison/", f"/projects/{project.pk}/my-work/"],
        admin.username: [f"/projects/{project.pk}/dashboard/", f"/projects/{project.pk}/settings/",
                         f"/projects/{project.pk}/annotations/", "/training/runs/new/"],
    }
    problems = []
    with launch_browser() as browser:
        for username, paths in pages.items():
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            login(page, live_server.url, username, "pass-1234")
            for path in paths:
                problems += keyboard_problems(page, live_server.url, path)
            context.close()
    assert not problems, "\n".join(problems)


def test_tab_reaches_every_control_on_the_training_and_admin_pages(live_server, monkeypatch):
    from loop import evaluation as evaluations
    from tests.factories import PromptFactory, model_version
    from training.models import MetricPoint, TrainingRun

    monkeypatch.setattr("loop.tasks.generation_execute.apply_async", lambda *a, **k: None)
    project = ProjectFactory(name="Keyboard training", overlap=1)
    comparison_task(project=project, texts=("One.", "Two."))
    PromptFactory.create_batch(2, project=project)
    admin = member(project, Membership.Role.ADMIN, username="tab-trainer")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    sft = model_version(name="sft-1", kind="sft", path="runs/1/model", parent=base, project=project)
    runs = []
    for status in ("running", "succeeded"):
        run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status=status, step=2,
                                         total_steps=4, created_by=admin, log_tail="step 2 loss=1.5")
        MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name="loss", value=2 - s / 4) for s in (1, 2)])
        runs.append(run)
    evaluation = evaluations.evaluation_create(project=project, model_a=base, model_b=sft, prompt_count=2,
                                               created_by=admin)
    p = project.pk
    paths = [
        "/training/runs/", f"/training/runs/{runs[0].pk}/", f"/training/runs/compare/?runs={runs[0].pk},{runs[1].pk}",
        "/training/models/", f"/training/models/{sft.pk}/", "/training/evaluations/new/",
        f"/training/evaluations/{evaluation.pk}/", "/training/generation/new/", f"/projects/{p}/export/",
        f"/projects/{p}/import/", f"/training/projects/{p}/leaderboard/",
    ]
    problems = []
    with launch_browser() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        login(page, live_server.url, admin.username, "pass-1234")
        for path in paths:
            problems += keyboard_problems(page, live_server.url, path)
        context.close()
    assert len(paths) == 11
    assert not problems, "\n".join(problems)
