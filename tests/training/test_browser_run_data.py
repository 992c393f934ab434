"""The new-run form's "Training data" counts, live in Chromium under the Content-Security-Policy."""

import pytest
from django.urls import reverse

from annotation.models import Annotation, Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, comparison_task, gold_comparison_task, member, model_version
from tests.training.labels import comparisons_create, demonstrations_create


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_counts_follow_the_kind_and_the_filters(live_server):
    project = ProjectFactory(name="Counted")
    member(project, Membership.Role.ADMIN, username="mlops")
    made = comparisons_create(project=project, n=4)
    gold = gold_comparison_task(project=project, texts=("Gold right.", "Gold wrong."))
    shown = list(gold.task_responses.order_by("position").values_list("response_id", flat=True))
    Annotation.objects.create(task=gold, project=project, labeler=made[0].labeler, kind="comparison",
                              ranking=[[shown[0]], [shown[1]]], strength="better")
    tied = comparison_task(project=project, texts=("Warm.", "Kind."))  # a tie: no pair, unless ties is chosen
    Annotation.objects.create(task=tied, project=project, labeler=made[0].labeler, kind="comparison",
                              ranking=[list(tied.task_responses.values_list("response_id", flat=True))])
    demonstrations_create(project=project, n=3)
    model_version(name="tiny", kind="base", path="models/tiny")

    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "mlops", "pass-1234")
        page.goto(f"{live_server.url}{reverse('training-run-new')}?project={project.pk}")
        sft_gold = page.locator("[data-count-for=exclude_gold]")
        sft_gold.filter(has_text="keeps 3 of 3").wait_for()  # sft: the demonstrations
        only_preference = page.locator("[data-only-kind='reward dpo']")
        assert only_preference.count() == 2 and all(row.is_hidden() for row in only_preference.all())  # consensus, ties

        page.check("input[name=kind][value=reward]")
        page.locator("[data-count-for=exclude_gold]").filter(has_text="keeps 4 of 5").wait_for()
        page.locator("[data-count-for=consensus]").filter(has_text="one pair per comparison: 5 of 5").wait_for()
        page.locator("[data-count-for=ties]").filter(has_text="with tied pairs: 7 (5 without)").wait_for()
        page.check("#id_data_ties")
        page.locator("[data-role=data-counts]").filter(has_text="With the filters chosen: 7 pairs (5 without them).").wait_for()
        page.uncheck("#id_data_ties")
        page.check("#id_data_exclude_gold")
        page.locator("[data-role=data-counts]").filter(has_text="With the filters chosen: 4 of 5 pairs.").wait_for()
        page.check("#id_data_reviewed_only")
        page.locator("[data-role=data-counts]").filter(has_text="0 of 5 pairs. A run needs at least one.").wait_for()
        page.fill("#id_data_min_competence", "0.5")
        page.locator("[data-count-for=min_competence]").filter(has_text="quality report").wait_for()

        page.check("input[name=kind][value=rlhf]")
        assert page.locator("#run-data").is_hidden()
