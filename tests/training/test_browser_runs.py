"""An ML engineer starts an SFT run from the form in Chromium and watches it finish, live.

The run is trained for real: a Celery worker subprocess over the test broker runs the pipeline on
the tiny base model, and the run page follows it through the API without reloading.
"""

import re

import pytest
from django.urls import reverse

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, member
from tests.training.labels import comparisons_create, demonstrations_create
from training.models import ModelVersion, TrainingRun

RUN_TIMEOUT_MS = 240_000


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_start_an_sft_run_from_the_form_and_watch_it_finish(live_server, celery_worker_process, tiny_base_model):
    project = ProjectFactory(name="Browser training")
    member(project, Membership.Role.ADMIN, username="mlops")
    demonstrations_create(project=project, n=8)

    with launch_browser() as browser:
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        errors = []
        context.on("weberror", lambda error: errors.append(str(error.error)))
        login(page, live_server.url, "mlops", "pass-1234")

        page.goto(f"{live_server.url}{reverse('training-run-new')}?project={project.pk}")
        assert page.is_checked("input[name=kind][value=sft]")
        assert page.input_value("#id_project") == str(project.pk)
        page.select_option("#id_base_model", str(tiny_base_model.pk))
        page.click("[data-config-section=advanced] summary")  # logging and checkpoints are advanced options
        for name, value in {"max_steps": "6", "batch_size": "2", "logging_steps": "1", "max_length": "64",
                            "save_steps": "100"}.items():
            page.fill(f"#id_config-{name}", value)
        page.click("#run-form button[type=submit]")

        try:
            page.wait_for_url(re.compile(r"/training/runs/\d+/$"))
        except Exception:
            problems = page.locator(".field-error, .form-errors").all_text_contents()
            raise AssertionError(f"The form did not start the run: {problems or page.url}") from None
        run = TrainingRun.objects.get()
        assert page.url.endswith(reverse("training-run-detail", args=[run.pk]))
        assert run.config["max_steps"] == 6 and run.kind == "sft"
        # Everything from here on must arrive by polling the API, not by reloading either page.
        page.evaluate("window.__notReloaded = true")
        runs_list = context.new_page()  # the runs list, open beside the run page, same session
        runs_list.goto(f"{live_server.url}{reverse('training-run-list')}")
        runs_list.evaluate("window.__notReloaded = true")
        row = f"#runs tr[data-run-id='{run.pk}']"
        # The warm launcher can finish six steps before this page loads: the row is active exactly
        # when the status it was drawn with is not a final one.
        drawn_status = runs_list.text_content(f"{row} [data-role=status]").strip()
        active = runs_list.get_attribute(row, "data-active")
        assert active == ("false" if drawn_status in ("Succeeded", "Failed", "Cancelled") else "true"), drawn_status
        seen = {page.get_attribute("[data-role=progress]", "value")}
        page.wait_for_function(
            "() => document.querySelector('[data-role=status]').textContent.trim() !== 'Queued'", timeout=RUN_TIMEOUT_MS
        )
        seen.add(page.get_attribute("[data-role=progress]", "value"))
        page.wait_for_function(
            "() => ['Succeeded', 'Failed', 'Cancelled'].includes(document.querySelector('[data-role=status]').textContent.trim())",
            timeout=RUN_TIMEOUT_MS,
        )
        run.refresh_from_db()
        assert page.text_content("[data-role=status]").strip() == "Succeeded", f"{run.error}\n{run.log_tail}"
        assert page.evaluate("window.__notReloaded") is True

        bar = page.locator("[data-role=progress]")
        assert bar.get_attribute("value") == "100.0"
        assert page.evaluate("document.querySelector('[data-role=progress]').position") == 1  # drawn full
        assert "run-progress--succeeded" in bar.get_attribute("class")
        assert "run-progress--active" not in bar.get_attribute("class")
        assert page.text_content("[data-role=percent]").strip() == "100%"
        assert page.text_content("[data-role=step]").strip() == "6"
        assert run.worker and page.text_content("[data-role=worker]").strip() == run.worker  # rendered, or filled in by polling
        assert seen != {"100.0"}, "the bar was already full before the run started"
        # The loss curve was drawn in place by Chart.js, one point per logged step.
        points = page.evaluate("Chart.getChart('chart-loss').data.datasets[0].data.length")
        assert points >= 3
        assert page.is_visible("[data-chart=loss]")
        # The cancel button is gone and lineage names the new model.
        assert page.locator("[data-role=cancel-form]").is_hidden()
        output = ModelVersion.objects.get(produced_by=run)
        page.wait_for_selector(f"[data-role=output-model] a[href$='/models/{output.pk}/']")
        assert page.text_content("[data-role=log]").strip() != "No output yet."

        runs_list.wait_for_function(
            f"() => document.querySelector(\"{row} [data-role=status]\").textContent.trim() === 'Succeeded'", timeout=10_000
        )
        assert runs_list.evaluate("window.__notReloaded") is True
        assert runs_list.get_attribute(f"{row} [data-role=progress]", "value") == "100.0"
        assert runs_list.text_content(f"{row} [data-role=steps]").strip() == "6 / 6"
        assert runs_list.text_content(f"{row} [data-role=finished]").strip() != "—"

        page.click("[data-role=output-model] a")
        page.wait_for_selector(f"#model[data-model-id='{output.pk}']")
        assert tiny_base_model.name in page.inner_text(".lineage-chain")  # the model's page: its lineage
        assert page.is_visible("[data-role=download]")
        assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_form_shows_each_kinds_bounds_and_keeps_an_out_of_range_value_at_its_field(live_server):
    """The script builds a kind's fields with the same min/max/step and choices as the server."""
    from training.pipelines import dpo

    project = ProjectFactory(name="Bounds")
    member(project, Membership.Role.ADMIN, username="mlops")
    demonstrations_create(project=project, n=2)
    comparisons_create(project=project, n=2)
    base = ModelVersion.objects.create(name="tiny", kind="base", path="models/tiny")

    with launch_browser() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        login(page, live_server.url, "mlops", "pass-1234")
        page.goto(f"{live_server.url}{reverse('training-run-new')}?project={project.pk}")
        steps = page.locator("#id_config-max_steps")
        assert [steps.get_attribute(a) for a in ("type", "min", "max", "step")] == ["number", "-1", "1000000", "1"]

        page.check("input[name=kind][value=dpo]")  # rendered by the script from the embedded defaults
        beta = page.locator("#id_config-beta")
        assert [beta.get_attribute(a) for a in ("type", "min", "max", "step")] == ["number", "0", "10", "any"]
        assert "Allowed: > 0 and <= 10." in page.text_content("[data-config-field=beta] [data-role=bounds]")
        options = page.eval_on_selector_all("#id_config-loss_type option", "nodes => nodes.map(n => n.value)")
        assert options == list(dpo.LOSS_TYPES)

        page.select_option("#id_base_model", str(base.pk))
        page.fill("#id_config-num_train_epochs", "0")
        page.select_option("#id_config-loss_type", "ipo")
        page.click("#run-form button[type=submit]")
        page.wait_for_selector("[data-config-field=num_train_epochs] .field-error")
        assert "Must be > 0 and <= 1000; got 0" in page.text_content("[data-config-field=num_train_epochs] .field-error")
        assert page.input_value("#id_config-num_train_epochs") == "0"
        assert page.input_value("#id_config-loss_type") == "ipo"  # what was chosen is kept
        assert page.is_checked("input[name=kind][value=dpo]")
        assert errors == []
    assert TrainingRun.objects.count() == 0
