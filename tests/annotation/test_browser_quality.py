"""In Chromium: the dashboard's quality section draws its chart and tables, and its button queues a recompute."""

import os

import pytest

from annotation.models import Membership
from annotation.reliability import store
from annotation.reliability.compute import quality_compute
from tests.annotation.quality_data import table_project
from tests.factories import member

TABLE = {
    "ann": [2, 2, -1, 3, -2, 0, 1, -3],
    "ben": [2, 1, -2, 3, -2, 0, 2, -3],
    "cid": [1, 2, -1, 2, -1, 1, 1, -2],
    "dee": [-1, 2, -1, 3, None, 0, -1, -3],
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_quality_section_draws_its_chart_and_queues_a_recompute(live_server, monkeypatch):
    from tests.browser import launch_browser, login

    sent = []
    monkeypatch.setattr("annotation.tasks.quality_compute_project.delay", sent.append)
    project, _, _ = table_project(TABLE)
    member(project, Membership.Role.ENGINEER, username="quinn")
    store.quality_report_set(report=quality_compute(project_id=project.pk))
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        login(page, live_server.url, "quinn", "pass-1234")
        page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
        page.wait_for_function(
            "() => window.Chart && Object.values(window.Chart.instances)"
            ".some((chart) => chart.canvas.id === 'quality-competence-chart')"
        )
        assert page.locator("canvas#quality-competence-chart").bounding_box()["height"] > 100
        bars = page.evaluate(
            "() => Object.values(window.Chart.instances)"
            ".find((chart) => chart.canvas.id === 'quality-competence-chart').data.datasets[0].data.length"
        )
        assert bars == 4
        assert page.locator("#pair-matrix td.heat").count() == 12  # 4 labelers, every pair both ways
        assert page.locator('#alpha-table tr[data-kind="choice"] [data-stat="alpha"]').inner_text() != "–"
        if os.environ.get("FEEDBACKLOOP_SCREENSHOTS"):  # for people checking the layout by eye
            page.wait_for_timeout(1500)  # let the bars finish growing
            page.locator("#quality").screenshot(path=os.path.join(os.environ["FEEDBACKLOOP_SCREENSHOTS"], "quality.png"))
        with page.expect_navigation():
            page.click("#quality-recompute button")
        assert page.url.endswith("#quality")
        assert "Label quality recompute queued" in page.content()
        assert page.locator("#quality-recompute button").is_disabled()
        assert errors == []
    assert sent == [project.pk]
