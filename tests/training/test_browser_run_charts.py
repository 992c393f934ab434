"""The run page in Chromium: one chart per metric family, each on its own axis, and never an empty one.

A DPO run's loss, margin and reward/accuracy get a chart each (no KL chart, as it logs no KL); a
legend names only the lines its chart draws; tick labels read as numbers a person can read. An RLHF
run opened before its first logging step shows no chart at all, and its KL chart appears when its
first KL value arrives by polling.
"""

import re

import pytest

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, member, model_version
from training.models import MetricPoint, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Per drawn chart: its datasets' labels and point counts, its legend's labels, its y tick labels.
CHARTS = """() => Array.from(document.querySelectorAll('#charts figure[data-chart]')).map(figure => {
  const chart = Chart.getChart('chart-' + figure.dataset.chart);
  return {id: figure.dataset.chart, visible: !figure.hidden && figure.offsetParent !== null,
          lines: chart ? chart.data.datasets.map(d => [d.label, d.data.length]) : null,
          legend: chart ? chart.legend.legendItems.map(i => i.text) : null,
          ticks: chart ? chart.scales.y.ticks.map(t => String(t.label)) : null};
})"""
# A tick a person reads at a glance: "0.25", "1.2e-8", "-3" (never "6.000000000E-9" or "0.30000000000000004").
READABLE = re.compile(r"^-?\d{1,5}(\.\d{1,3})?(e-?\d{1,3})?$")


def drawn(charts) -> dict:
    return {c["id"]: c for c in charts if c["visible"]}


def metrics(run, values: dict[str, list[float]], steps=(1, 2, 3)) -> None:
    MetricPoint.objects.bulk_create([MetricPoint(run=run, step=step, name=name, value=value)
                                     for name, series in values.items() for step, value in zip(steps, series)])


@pytest.fixture
def engineer_and_models():
    project = ProjectFactory(name="Charted")
    engineer = member(project, Membership.Role.ENGINEER, username="chart-eng")
    base = model_version(name="tiny-base", kind="base", path="models/tiny", project=project)
    sft = model_version(name="sft-1", kind="sft", path="runs/1/model", parent=base, project=project)
    rm = model_version(name="rm-1", kind="reward", path="runs/2/model", parent=sft, project=project)
    return project, engineer, sft, rm


def test_a_dpo_run_draws_each_family_on_its_own_chart_with_readable_ticks(live_server, engineer_and_models):
    project, engineer, sft, _ = engineer_and_models
    run = TrainingRun.objects.create(kind="dpo", project=project, base_model=sft, status="succeeded", step=3,
                                     total_steps=3, created_by=engineer)
    metrics(run, {
        "loss": [0.69, 0.61, 0.52],
        "rewards/margins": [6e-9, 1.2e-8, 1.8e-8],  # tiny at first: the ticks must still read well
        "rewards/chosen": [0.01, 0.03, 0.07], "rewards/rejected": [-0.01, -0.02, -0.04],
        "rewards/accuracies": [0.5, 0.625, 0.75],
        "learning_rate": [6e-9, 5e-9, 4e-9], "logps/chosen": [-40.0, -39.0, -38.5],  # never drawn
    })
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/{run.pk}/")
        page.wait_for_function("() => window.Chart && Chart.getChart('chart-loss')")
        charts = page.evaluate(CHARTS)
        shown = drawn(charts)
        assert list(shown) == ["loss", "margin", "reward"]
        assert all(c["lines"] is None for c in charts if not c["visible"])  # no KL or entropy chart, not even empty
        assert page.is_hidden("[data-role=charts-empty]")
        assert shown["loss"]["lines"] == [["loss", 3]]
        assert shown["margin"]["lines"] == [["rewards/margins", 3]]
        assert shown["reward"]["lines"] == [["rewards/accuracies", 3], ["rewards/chosen", 3], ["rewards/rejected", 3]]
        # A legend only where there is more than one line, naming exactly the lines drawn.
        assert shown["loss"]["legend"] == [] and shown["margin"]["legend"] == []
        assert shown["reward"]["legend"] == ["rewards/accuracies", "rewards/chosen", "rewards/rejected"]
        for chart in shown.values():
            assert chart["ticks"] and all(READABLE.match(t) for t in chart["ticks"]), (chart["id"], chart["ticks"])
        assert any("e-" in t for t in shown["margin"]["ticks"])  # 1.2e-8, not 0.00000001 or 1.2E-8
        # Each chart has its own axis: the margin's range is not the loss's.
        assert page.evaluate("() => Chart.getChart('chart-margin').scales.y.max") < 1e-6
        assert page.evaluate("() => Chart.getChart('chart-loss').scales.y.max") > 0.5
        assert errors == []


def test_a_running_rlhf_run_shows_no_empty_chart_and_its_kl_chart_arrives_with_kl(live_server, engineer_and_models):
    project, engineer, sft, rm = engineer_and_models
    run = TrainingRun.objects.create(kind="rlhf", project=project, base_model=sft, reward_model=rm, status="running",
                                     step=0, total_steps=10, created_by=engineer)
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_server.url, engineer.username, "pass-1234")
        page.goto(f"{live_server.url}/training/runs/{run.pk}/")
        page.wait_for_load_state("load")
        assert drawn(page.evaluate(CHARTS)) == {}
        assert page.is_visible("[data-role=charts-empty]")

        metrics(run, {"loss": [0.1, 0.09], "reward": [0.2, 0.35], "reward_std": [0.1, 0.12]}, steps=(1, 2))
        TrainingRun.objects.filter(pk=run.pk).update(step=2)
        page.wait_for_function("() => Chart.getChart('chart-reward') !== undefined", timeout=15_000)
        assert list(drawn(page.evaluate(CHARTS))) == ["loss", "reward"]  # no KL logged yet: no KL chart
        assert page.is_hidden("[data-role=charts-empty]")

        metrics(run, {"kl": [0.004, 0.011]}, steps=(3, 4))
        TrainingRun.objects.filter(pk=run.pk).update(step=4)
        page.wait_for_function("() => Chart.getChart('chart-kl') !== undefined", timeout=15_000)
        shown = drawn(page.evaluate(CHARTS))
        assert list(shown) == ["loss", "reward", "kl"]
        assert shown["kl"]["lines"] == [["kl", 2]] and shown["kl"]["legend"] == []
        assert shown["reward"]["legend"] == ["reward", "reward_std"]
