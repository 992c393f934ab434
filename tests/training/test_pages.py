"""The ML engineer's training pages: runs list, new-run form, run page and model registry."""

import json
import re

import pytest
from django.urls import reverse

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from tests.training.labels import comparisons_create, demonstrations_create, run_frozen
from training import selectors
from training.pipelines import common, dpo
from training.models import DatasetSnapshot, MetricPoint, TrainingRun

pytestmark = pytest.mark.django_db
KINDS = ["sft", "reward", "dpo", "rlhf"]


@pytest.fixture
def project():
    return ProjectFactory(name="Helpful chat")


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


@pytest.fixture
def labeler(project):
    return member(project, Membership.Role.LABELER, username="lena")


@pytest.fixture
def outsider():
    """Admin of another project, with a run of its own there."""
    other = ProjectFactory(name="Secret project")
    user = member(other, Membership.Role.ADMIN, username="oscar")
    base = model_version(name="secret-base", kind="base", path="models/secret", project=other)
    TrainingRun.objects.create(kind="sft", project=other, base_model=base, status="running", step=1, total_steps=5)
    return user


@pytest.fixture
def base_model(project):
    return model_version(name="tiny-base", kind="base", path="models/tiny", project=project)


@pytest.fixture
def reward_model(project, base_model):
    return model_version(
        name="rm-1", kind="reward", path="runs/1/model", parent=base_model, project=project
    )


@pytest.fixture
def run(project, base_model, admin):
    snapshot = DatasetSnapshot.objects.create(project=project, format="sft", path="snapshots/0.jsonl",
                                              sha256="0" * 64, row_count=2)
    run = TrainingRun.objects.create(
        kind="sft", project=project, base_model=base_model, snapshot=snapshot, status="running", step=3, total_steps=10,
        log_tail="step 1\nstep 2\nstep 3 loss=1.5", created_by=admin, config={"learning_rate": 0.001},
    )
    MetricPoint.objects.bulk_create([
        MetricPoint(run=run, step=1, name="loss", value=2.5),
        MetricPoint(run=run, step=2, name="loss", value=2.0),
        MetricPoint(run=run, step=3, name="loss", value=1.5),
    ])
    return run


@pytest.fixture
def demonstrations(project):
    """Two demonstrations, so an sft snapshot of the project has rows."""
    return demonstrations_create(project=project, n=2)


def client_as(client, user):
    client.force_login(user)
    return client


def section(html: str, marker: str) -> str:
    """The HTML from `marker` to the next config field or form row (where a field's error is shown)."""
    start = html.index(marker)
    ends = [i for i in (html.find('data-config-field="', start + 1), html.find('class="form-row', start + 1)) if i > 0]
    return html[start:min(ends)] if ends else html[start:]


def new_run_data(project, base_model, **config):
    data = {"kind": "sft", "project": str(project.pk), "base_model": str(base_model.pk)}
    data.update({f"config-{name}": value for name, value in config.items()})
    return data


# Access ---------------------------------------------------------------------------------------------


def test_every_page_needs_a_login(client, run):
    urls = [
        reverse("training-run-list"), reverse("training-run-new"), reverse("training-model-list"),
        reverse("training-run-detail", args=[run.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_every_page_renders_for_a_project_admin(client, admin, run, base_model):
    client_as(client, admin)
    for name, args in [
        ("training-run-list", []), ("training-run-new", []), ("training-model-list", []),
        ("training-run-detail", [run.pk]),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200, name
        html = response.content.decode()
        # The training pages link to each other from the top nav.
        assert f'href="{reverse("training-run-list")}"' in html
        assert f'href="{reverse("training-model-list")}"' in html


def test_non_members_get_404_for_a_run_and_for_starting_runs_in_the_project(client, outsider, run, project):
    client_as(client, outsider)
    assert client.get(reverse("training-run-detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("training-run-new") + f"?project={project.pk}").status_code == 404
    assert client.post(reverse("training-run-cancel", args=[run.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == "running"


def test_labelers_see_nothing_of_runs_and_may_not_start_or_cancel(
    client, labeler, run, project, base_model, demonstrations
):
    client_as(client, labeler)
    assert client.get(reverse("training-run-detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("training-run-list")).status_code == 403
    assert client.get(reverse("training-model-list")).status_code == 403
    assert 'href="/training/runs/"' not in client.get("/").content.decode()  # no Training link in the nav
    assert client.get(reverse("training-run-new")).status_code == 403
    assert client.get(reverse("training-run-new") + f"?project={project.pk}").status_code == 403
    response = client.post(reverse("training-run-new"), new_run_data(project, base_model))
    assert response.status_code == 403
    assert client.post(reverse("training-run-cancel", args=[run.pk])).status_code == 404
    run.refresh_from_db()
    assert run.status == "running"
    assert TrainingRun.objects.count() == 1


# Runs list ------------------------------------------------------------------------------------------


def test_runs_list_shows_only_the_users_projects(client, admin, run, outsider):
    html = client_as(client, admin).get(reverse("training-run-list")).content.decode()
    assert reverse("training-run-detail", args=[run.pk]) in html
    assert "Helpful chat" in html
    assert "Secret project" not in html
    assert "secret-base" not in html
    row = re.search(rf'<tr data-run-id="{run.pk}"[^>]*>', html).group(0)
    assert f'data-api="/api/training-runs/{run.pk}/"' in row
    assert 'data-active="true"' in row
    assert 'max="100" value="30.0"' in html  # step 3 of 10
    assert "3 / 10" in html and "· 30%" in html
    assert "run-status--running" in html
    other = TrainingRun.objects.exclude(project__memberships__user=admin).get()
    assert reverse("training-run-detail", args=[other.pk]) not in html


def test_runs_list_filters_by_project_and_status(client, admin, run, project, base_model):
    second = ProjectFactory(name="Second project")
    Membership.objects.create(project=second, user=admin, role=Membership.Role.ADMIN)
    done = TrainingRun.objects.create(
        kind="reward", project=second, base_model=base_model, status="succeeded", step=4, total_steps=4
    )
    client_as(client, admin)
    detail = lambda r: reverse("training-run-detail", args=[r.pk])  # noqa: E731

    html = client.get(reverse("training-run-list"), {"status": "succeeded"}).content.decode()
    assert detail(done) in html and detail(run) not in html
    html = client.get(reverse("training-run-list"), {"status": "active"}).content.decode()
    assert detail(run) in html and detail(done) not in html
    html = client.get(reverse("training-run-list"), {"project": project.pk}).content.decode()
    assert detail(run) in html and detail(done) not in html
    html = client.get(reverse("training-run-list"), {"project": second.pk, "status": "running"}).content.decode()
    assert detail(run) not in html and detail(done) not in html
    assert "No runs match these filters" in html



def test_runs_list_shows_each_runs_output_model(client, admin, run, project, base_model):
    done = TrainingRun.objects.create(kind="sft", project=project, base_model=base_model, status="succeeded", step=4,
                                      total_steps=4, created_by=admin)
    made = model_version(name="sft-from-list", kind="sft", path="runs/9/model", parent=base_model, project=project,
                         produced_by=done)
    html = client_as(client, admin).get(reverse("training-run-list")).content.decode()
    cell = lambda r: re.search(  # noqa: E731
        rf'<tr data-run-id="{r.pk}".*?data-role="output-model">(.*?)</td>', html, re.S).group(1)
    assert f'href="{reverse("training-model-detail", args=[made.pk])}">sft-from-list</a>' in cell(done)
    assert "<a" not in cell(run) and "—" in cell(run)  # still running: no model yet
    assert f'data-models-url="{reverse("training-model-list")}"' in html  # where the polling links a new one

# New run ---------------------------------------------------------------------------------------------


def test_new_run_form_embeds_and_shows_each_kinds_defaults(client, admin, base_model, reward_model):
    client_as(client, admin)
    html = client.get(reverse("training-run-new")).content.decode()
    embedded = json.loads(re.search(r'<script id="pipeline-defaults" type="application/json">(.*?)</script>',
                                    html, re.S).group(1))
    assert sorted(embedded) == sorted(KINDS)
    for kind in KINDS:
        defaults = selectors.pipeline_defaults(kind=kind)
        assert embedded[kind] == json.loads(json.dumps(defaults))
        page = client.get(reverse("training-run-new"), {"kind": kind}).content.decode()
        assert f'name="kind" value="{kind}" checked' in page
        for name, spec in defaults.items():
            assert f'name="config-{name}"' in page, (kind, name)
        lr = defaults["learning_rate"]["default"]
        shown = re.search(r'name="config-learning_rate" value="([^"]+)"', page).group(1)
        assert float(shown) == lr, kind
        reward_row = re.search(r'<div class="form-row[^"]*" data-only-kind="rlhf"[^>]*>', page).group(0)
        assert ("hidden" in reward_row) == (kind != "rlhf")
    # The kinds' defaults differ, so switching kind must swap them.
    assert selectors.pipeline_defaults(kind="sft") != selectors.pipeline_defaults(kind="reward")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("learning_rate", "-0.1", "Must be &gt; 0 and &lt;= 1; got -0.1"),
        ("batch_size", "many", "Expected int"),
        ("max_steps", "0", "Must be -1, or from 1 to 1000000; got 0"),
        ("lora_target_modules", "[1, 2]", "Expected list"),
        ("num_train_epochs", "0", "Must be &gt; 0 and &lt;= 1000; got 0"),
        ("warmup_steps", "-5", "Must be from 0 to 1000000; got -5"),
        ("batch_size", "5000", "Must be from 1 to 1024; got 5000"),
    ],
)
def test_a_bad_config_value_is_shown_at_its_field_and_queues_nothing(
    client, admin, project, base_model, demonstrations, field, value, fragment
):
    client_as(client, admin)
    response = client.post(reverse("training-run-new"), new_run_data(project, base_model, **{field: value}))
    assert response.status_code == 400
    html = response.content.decode()
    at_field = section(html, f'data-config-field="{field}"')
    assert "field-error" in at_field
    assert fragment in at_field
    assert f'value="{value}"' in at_field  # what was typed stays in the box
    assert "Nothing was started." in html
    assert TrainingRun.objects.count() == 0
    assert DatasetSnapshot.objects.count() == 0


def input_tag(html: str, name: str) -> str:
    return re.search(rf'<(?:input|select)[^>]*name="config-{name}"[^>]*>', html).group(0)


def test_the_form_shows_each_fields_bounds_from_the_pipeline_metadata(client, admin, base_model):
    client_as(client, admin)
    sft = client.get(reverse("training-run-new"), {"kind": "sft"}).content.decode()
    max_steps = input_tag(sft, "max_steps")
    assert 'type="number"' in max_steps and 'step="1"' in max_steps
    assert 'min="-1"' in max_steps and 'max="1000000"' in max_steps  # -1, or 1 to 1000000
    rate = input_tag(sft, "learning_rate")
    assert 'type="number"' in rate and 'step="any"' in rate and 'min="0"' in rate and 'max="1"' in rate
    assert 'min="0"' in input_tag(sft, "warmup_steps")
    assert 'min="1"' in input_tag(sft, "batch_size") and 'max="1024"' in input_tag(sft, "batch_size")
    assert "Allowed: &gt; 0 and &lt;= 1." in section(sft, 'data-config-field="learning_rate"')
    assert "Allowed: -1, or from 1 to 1000000." in section(sft, 'data-config-field="max_steps"')
    schedules = section(sft, 'data-config-field="lr_scheduler_type"')
    assert "<select" in schedules
    assert re.findall(r'<option value="([^"]*)"', schedules) == list(common.LR_SCHEDULERS)
    losses = section(client.get(reverse("training-run-new"), {"kind": "dpo"}).content.decode(),
                     'data-config-field="loss_type"')
    assert re.findall(r'<option value="([^"]*)"', losses) == list(dpo.LOSS_TYPES)


@pytest.mark.parametrize(("field", "value"), [("lr_scheduler_type", "warmup_stable_decay"), ("loss_type", "ppo")])
def test_a_choice_outside_the_list_is_refused_at_its_select(
    client, admin, project, base_model, demonstrations, field, value
):
    client_as(client, admin)
    data = new_run_data(project, base_model, **{field: value})
    data["kind"] = "dpo"
    comparisons_create(project=project, n=2)
    response = client.post(reverse("training-run-new"), data)
    assert response.status_code == 400
    at_field = section(response.content.decode(), f'data-config-field="{field}"')
    assert "<select" in at_field and "field-error" in at_field and "Must be one of" in at_field
    assert TrainingRun.objects.count() == 0 and DatasetSnapshot.objects.count() == 0


def test_rlhf_without_a_reward_model_is_refused_at_the_reward_model_field(
    client, admin, project, base_model, reward_model, demonstrations
):
    client_as(client, admin)
    data = new_run_data(project, base_model)
    data["kind"] = "rlhf"
    response = client.post(reverse("training-run-new"), data)
    assert response.status_code == 400
    html = response.content.decode()
    at_field = section(html, 'data-only-kind="rlhf"')
    assert "field-error" in at_field and "reward model" in at_field
    assert TrainingRun.objects.count() == 0


def test_a_valid_form_starts_the_run_and_opens_its_page(client, admin, project, base_model, demonstrations):
    client_as(client, admin)
    data = new_run_data(project, base_model, learning_rate="0.003", max_steps="7", packing="false")
    response = client.post(reverse("training-run-new"), data)
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("training-run-detail", args=[run.pk])
    assert (run.kind, run.project, run.base_model, run.created_by) == ("sft", project, base_model, admin)
    assert run.status == "queued"
    assert run.config["learning_rate"] == 0.003 and run.config["max_steps"] == 7
    assert run.config["packing"] is False
    assert run.snapshot is None and run_frozen(run).snapshot.row_count == 2


# Run page ---------------------------------------------------------------------------------------------


def test_run_page_shows_progress_metrics_log_lineage_and_cancel(client, admin, run, base_model):
    client_as(client, admin)
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert "run-status--running" in html
    assert 'max="100" value="30.0"' in html
    assert 'data-api="/api/training-runs/%d/"' % run.pk in html
    series = json.loads(re.search(r'<script id="run-metrics" type="application/json">(.*?)</script>',
                                  html, re.S).group(1))
    assert series == {"loss": [[1, 2.5], [2, 2.0], [3, 1.5]]}
    loss_chart = re.search(r'<figure class="card chart-card" data-chart="loss"[^>]*>', html).group(0)
    assert "hidden" not in loss_chart
    assert "hidden" in re.search(r'<figure class="card chart-card" data-chart="kl"[^>]*>', html).group(0)
    assert "vendor/chart.umd.min.js" in html and "cdn" not in html.lower()
    assert "step 3 loss=1.5" in html
    assert "tiny-base" in html
    assert "Cancel run" in html and 'name="csrfmiddlewaretoken"' in html


def test_run_page_shows_the_error_and_output_model_when_finished(client, admin, run, base_model):
    run.status, run.error = "failed", "CUDA out of memory"
    run.save()
    client_as(client, admin)
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert "CUDA out of memory" in html
    assert "Cancel run" in html  # present for the JS, but hidden
    assert re.search(r'<form [^>]*data-role="cancel-form"[^>]*hidden', html)
    run.status, run.error = "succeeded", ""
    run.save()
    model_version(name="sft-out", kind="sft", path="runs/x/model", parent=base_model, produced_by=run)
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert "sft-out" in html


def test_the_no_script_cancel_button_cancels_through_the_service(client, admin, run):
    response = client_as(client, admin).post(reverse("training-run-cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelling"


# Model registry ----------------------------------------------------------------------------------------


def test_registry_shows_lineage_as_a_tree(client, admin, project, base_model, outsider):
    sft = model_version(name="sft-1", kind="sft", path="runs/2/model", parent=base_model,
                                      project=project, metrics={"loss": 1.23456, "steps": 40})
    rm = model_version(name="rm-1", kind="reward", path="runs/3/model", parent=sft, project=project)
    policy = model_version(name="policy-1", kind="policy", path="runs/4/model", parent=sft,
                                         project=project)
    html = client_as(client, admin).get(reverse("training-model-list")).content.decode()
    rows = re.findall(r'<tr id="model-(\d+)" data-model-id="\d+" data-parent-id="(\d*)" data-depth="(\d+)"', html)
    visible = [(int(pk), parent, int(depth)) for pk, parent, depth in rows]
    assert visible == [
        (base_model.pk, "", 0),
        (sft.pk, str(base_model.pk), 1),
        (rm.pk, str(sft.pk), 2),
        (policy.pk, str(sft.pk), 2),
    ]
    assert "secret-base" not in html
    assert "loss</span> 1.235" in html
    assert "2 children" in html


@pytest.mark.parametrize(
    ("raw", "says"),
    [('["q\\u0000"]', "NUL"), ('["q\\ud800"]', "surrogate"), ("[" * 10_000, "lora_target_modules")],
)
def test_json_typed_into_the_form_that_cannot_be_stored_is_a_400_on_its_field(
    client, admin, project, base_model, demonstrations, raw, says
):
    response = client_as(client, admin).post(
        reverse("training-run-new"), new_run_data(project, base_model, lora_target_modules=raw)
    )
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_each_metric_family_gets_its_own_chart_and_kl_only_when_there_is_kl():
    from training.views import metric_charts

    def charts(*names):
        return {chart["id"]: chart["metrics"] for chart in metric_charts({name: [[1, 0.5]] for name in names})}

    assert charts("loss", "mean_token_accuracy", "entropy", "learning_rate") == {
        "loss": ["loss"], "reward": ["mean_token_accuracy"], "entropy": ["entropy"],
    }  # an SFT run: no KL chart
    assert charts("loss", "rewards/margins", "rewards/chosen", "rewards/accuracies") == {
        "loss": ["loss"], "margin": ["rewards/margins"], "reward": ["rewards/accuracies", "rewards/chosen"],
    }  # DPO: the margin on an axis of its own
    assert charts("kl", "reward", "entropy")["kl"] == ["kl"]


def test_every_config_problem_shows_at_once_and_queues_nothing(client, admin, project, base_model, demonstrations):
    client_as(client, admin)
    data = new_run_data(project, base_model, learning_rate="-1", batch_size="5000", warmup_steps="-5")
    response = client.post(reverse("training-run-new"), data)
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("learning_rate", "batch_size", "warmup_steps"):
        assert "field-error" in section(html, f'data-config-field="{field}"'), field
    assert TrainingRun.objects.count() == 0


def test_new_run_like_this_copies_the_config_the_models_and_the_data(client, admin, project, base_model,
                                                                     reward_model):
    client_as(client, admin)
    earlier = TrainingRun.objects.create(
        kind="rlhf", project=project, base_model=base_model, reward_model=reward_model, status="failed",
        config={"learning_rate": 0.0003, "max_steps": 7}, created_by=admin,
    )
    html = client.get(reverse("training-run-new") + f"?like={earlier.pk}").content.decode()
    assert re.search(r'<input type="radio" name="kind" value="rlhf"[^>]* checked', html)
    assert re.search(rf'<option value="{base_model.pk}"[^>]*selected', html)
    assert re.search(rf'<option value="{reward_model.pk}"[^>]*selected', html)
    assert 'value="0.0003"' in section(html, 'data-config-field="learning_rate"')
    assert 'value="7"' in section(html, 'data-config-field="max_steps"')
    other = TrainingRun.objects.create(kind="sft", project=ProjectFactory(), base_model=base_model, status="queued")
    assert client.get(reverse("training-run-new") + f"?like={other.pk}").status_code == 404


def test_the_base_model_menu_says_which_kinds_fit_and_the_only_fitting_model_is_chosen(client, admin, project,
                                                                                       base_model):
    client_as(client, admin)
    html = client.get(reverse("training-run-new") + f"?project={project.pk}").content.decode()
    fits = json.loads(re.search(r'data-fits="([^"]+)"', html).group(1).replace("&quot;", '"'))
    assert "reward" not in fits["dpo"] and fits["reward"] == ["base", "sft"]
    assert re.search(rf'<option value="{base_model.pk}"[^>]*data-kind="base"[^>]*selected', html) or \
        re.search(rf'<option value="{base_model.pk}"[^>]*selected[^>]*data-kind="base"', html)


def test_a_run_whose_snapshot_is_freezing_says_so_with_its_progress(client, admin, project, base_model):
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base_model, status="running",
                                     frozen_rows=250, frozen_rows_expected=1000, created_by=admin,
                                     data_filters={"exclude_gold": True})
    client_as(client, admin)
    html = client.get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert re.search(r'data-role="freezing"[^>]*>Freezing the dataset: <strong data-role="frozen-rows">250</strong>'
                     r'<span data-role="frozen-expected"> of 1000</span> rows', html)
    assert 'max="100" value="25.0"' in html
    assert "Frozen by the worker when the run starts, with data filters <code>exclude_gold=true</code>" in html
    body = client.get(f"/api/training-runs/{run.pk}/").json()
    assert (body["phase"], body["frozen_rows"], body["frozen_rows_expected"]) == ("freezing", 250, 1000)



def test_a_run_that_ended_before_its_snapshot_says_it_has_none(client, admin, project, base_model):
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base_model, status="failed",
                                     error="The worker was lost.", created_by=admin)
    html = client_as(client, admin).get(reverse("training-run-detail", args=[run.pk])).content.decode()
    assert "None: the run ended before its dataset was frozen" in html
    assert "Frozen by the worker when the run starts" not in html  # it never will be

def test_the_runs_list_says_which_run_is_freezing_its_dataset(client, admin, project, base_model):
    TrainingRun.objects.create(kind="sft", project=project, base_model=base_model, status="running", created_by=admin)
    client_as(client, admin)
    html = client.get(reverse("training-run-list")).content.decode()
    assert '<span data-role="steps">freezing the dataset</span>' in html
