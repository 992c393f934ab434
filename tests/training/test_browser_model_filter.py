"""The start forms offer, for the chosen project, its own models and the global ones only (Chromium)."""

import pytest

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, member
from training.models import ModelVersion


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_choosing_a_project_shows_its_models_and_the_global_ones(live_server):
    first, second = ProjectFactory(name="First"), ProjectFactory(name="Second")
    engineer = member(first, Membership.Role.ENGINEER, username="two-hats")
    second.memberships.create(user=engineer, role=Membership.Role.ENGINEER)
    shared = ModelVersion.objects.create(name="shared-base", kind="base", path="models/tiny")
    mine = ModelVersion.objects.create(name="first-sft", kind="sft", path="runs/1/model", project=first)
    theirs = ModelVersion.objects.create(name="second-sft", kind="sft", path="runs/2/model", project=second)

    def offered(page, select):
        return page.eval_on_selector_all(
            f"{select} option", "els => els.filter(o => !o.hidden && o.value).map(o => o.value)")

    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "two-hats", "pass-1234")
        for url, select in (("/training/runs/new/", "#id_base_model"), ("/training/generation/new/", "#id_model")):
            page.goto(f"{live_server.url}{url}?project={first.pk}")
            assert set(offered(page, select)) == {str(shared.pk), str(mine.pk)}
            page.select_option(select, str(mine.pk))
            page.select_option("#id_project", str(second.pk))
            assert set(offered(page, select)) == {str(shared.pk), str(theirs.pk)}
            # The first project's model, chosen before, gives way to one the second project may use.
            assert page.input_value(select) in {str(shared.pk), str(theirs.pk)}
