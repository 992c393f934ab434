"""The run page while a run goes on: time left, then, when it ends, the tab's title and a notification."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, PromptFactory, member, model_version
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records each notification the page makes (Chromium headless shows none).
RECORD_NOTIFICATIONS = """
window.__notes = [];
const Real = window.Notification;
class Recorded { constructor(title, options) { window.__notes.push({title, body: (options || {}).body}); } }
Recorded.permission = "granted";
Recorded.requestPermission = () => Promise.resolve("granted");
window.Notification = Recorded;
"""


def test_time_left_then_the_title_and_a_notification_when_the_run_ends(live_server):
    project = ProjectFactory(name="Watched")
    engineer = member(project, Membership.Role.ENGINEER, username="watcher")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    run = TrainingRun.objects.create(
        kind="sft", project=project, base_model=base, status="running", step=3, total_steps=10,
        started_at=timezone.now() - timedelta(seconds=30), created_by=engineer,
    )
    with launch_browser() as browser:
        context = browser.new_context()
        context.add_init_script(RECORD_NOTIFICATIONS)
        page = context.new_page()
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/{run.pk}/")
        eta = page.inner_text("[data-role=eta]")
        assert eta.startswith("about 1m"), eta  # 30 s for 3 steps, 7 to go
        assert "notification when the run ends" in page.inner_text("[data-role=notify-state]")

        TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", step=10, finished_at=timezone.now())
        page.wait_for_function("() => document.title.startsWith('Run #')", timeout=15_000)
        assert page.title().startswith(f"Run #{run.pk} \u2713 succeeded")
        notes = page.evaluate("() => window.__notes")
        assert [n["title"] for n in notes] == [f"Run #{run.pk} \u2713 succeeded"]
        assert page.inner_text("[data-role=eta]") == "\u2014"



def test_the_runs_list_names_a_runs_output_model_when_it_ends(live_server):
    project = ProjectFactory(name="Listed")
    engineer = member(project, Membership.Role.ENGINEER, username="lister")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running", step=1,
                                     total_steps=4, started_at=timezone.now(), created_by=engineer)
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/")
        cell = f"#runs tr[data-run-id='{run.pk}'] [data-role=output-model]"
        assert page.inner_text(cell).strip() == "\u2014"
        page.evaluate("window.__notReloaded = true")
        TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", step=4, finished_at=timezone.now())
        made = model_version(name="sft-listed", kind="sft", path="runs/1/model", parent=base, project=project,
                             produced_by=run)
        page.wait_for_function(f"() => document.querySelector(\"{cell}\").textContent.trim() === 'sft-listed'",
                               timeout=15_000)
        assert page.get_attribute(f"{cell} a", "href") == f"/training/models/{made.pk}/"
        assert page.evaluate("window.__notReloaded") is True

def test_two_runs_curves_on_one_page_from_the_runs_list(live_server):
    from training.models import MetricPoint

    project = ProjectFactory(name="Compared")
    engineer = member(project, Membership.Role.ENGINEER, username="comparer")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    runs = []
    for lr, slope in (("0.001", 0.5), ("0.0003", 0.2)):
        run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="succeeded", step=3,
                                         total_steps=3, created_by=engineer, config={"learning_rate": lr, "seed": 0})
        MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name=n, value=v)
                                         for s in (1, 2, 3) for n, v in (("loss", 3 - slope * s),
                                                                          ("mean_token_accuracy", 0.2 * s))])
        runs.append(run)
    other = TrainingRun.objects.create(kind="sft", project=ProjectFactory(), base_model=base, status="queued")
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/")
        for run in runs:
            page.check(f'input[name=runs][value="{run.pk}"]')
        with page.expect_navigation():
            page.click("#compare-form button[type=submit]")
        page.wait_for_selector("#run-compare[data-ready=true]")
        charts = page.eval_on_selector_all("#run-compare figure[data-chart]", "els => els.map(e => e.dataset.chart)")
        assert charts == ["loss", "reward"]
        lines = page.evaluate("() => Chart.getChart('compare-loss').data.datasets.map(d => d.label)")
        assert lines == [f"#{runs[0].pk} sft · loss", f"#{runs[1].pk} sft · loss"]
        # Each run's value starts where its heading does (the text, not the cell).
        lefts = page.evaluate("""() => [2, 3].map(i => Array.from(document.querySelectorAll(
          `.compare-config tr > :nth-child(${i})`)).map(cell => {
            const text = document.createRange();
            text.selectNodeContents(cell);
            return Math.round(text.getBoundingClientRect().left);
          }))""")
        assert all(len(set(column)) == 1 for column in lefts), lefts
        differs = page.inner_text(".compare-config tr.differs")
        assert "learning_rate" in differs and "0.001" in differs and "0.0003" in differs
        # A run of a project the engineer may not train in is a 404; one run alone is a clear 400.
        assert page.goto(f"{live_server.url}/training/runs/compare/?runs={runs[0].pk},{other.pk}").status == 404
        one = page.goto(f"{live_server.url}/training/runs/compare/?runs={runs[0].pk}")
        assert one.status == 400 and "Choose 2 to 4 runs" in page.inner_text("main")


def test_new_run_like_this_submits_as_is_and_menus_offer_only_fitting_models(live_server, monkeypatch):
    monkeypatch.setattr("training.services.run_enqueue", lambda *, run_id: None)  # no worker here
    project = ProjectFactory(name="Again")
    PromptFactory.create_batch(2, project=project)  # rlhf trains on the project's prompts
    engineer = member(project, Membership.Role.ENGINEER, username="again-eng")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    sft = model_version(name="sft-1", kind="sft", path="runs/1/model", parent=base, project=project)
    rm = model_version(name="rm-1", kind="reward", path="runs/2/model", parent=sft, project=project)
    earlier = TrainingRun.objects.create(
        kind="rlhf", project=project, base_model=sft, reward_model=rm, status="failed", created_by=engineer,
        config={"learning_rate": 0.0003, "max_steps": 7, "beta": 0.2},
    )
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/{earlier.pk}/")
        with page.expect_navigation():
            page.click("text=New run like this")
        with page.expect_navigation():
            page.click("#run-form button[type=submit]")
        again = TrainingRun.objects.exclude(pk=earlier.pk).get()
        assert (again.kind, again.base_model_id, again.reward_model_id) == ("rlhf", sft.pk, rm.pk)
        assert {k: again.config[k] for k in ("learning_rate", "max_steps", "beta")} == earlier.config

        page.goto(f"{live_server.url}/training/runs/new/?project={project.pk}&kind=dpo")
        offered = page.eval_on_selector_all(
            "select[name=base_model] option:not([hidden])", "os => os.map(o => o.textContent).filter(t => t)"
        )
        assert all("rm-1" not in text for text in offered) and any("sft-1" in text for text in offered)
        page.check("input[name=kind][value=reward]")
        offered = page.eval_on_selector_all(
            "select[name=base_model] option:not([hidden])", "os => os.map(o => o.textContent)"
        )
        assert not any("rm-1" in text for text in offered)
