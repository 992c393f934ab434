"""The whole API against its own OpenAPI schema, with generated input (schemathesis over Hypothesis).

One test per operation of /api/schema/ and per kind of input (valid by the schema, and invalid),
called in-process through Django's WSGI app as a project admin with a token, over a project that
has tasks of both kinds, an annotation waiting for review, a model, a run and a generation job.
Every answer must be free of server errors and, where the schema documents its status, match the
documented body and content type (a paginated list is documented as paginated). The examples per
operation are bounded (50 each way: the API has grown past a hundred operations, and 200 made this file
a third of the suite's time); FEEDBACKLOOP_SCHEMATHESIS_EXAMPLES=500 gives a deeper run.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from annotation.models import Annotation, GoldRecord, Membership
from annotation.reliability import store
from annotation.reliability.compute import quality_compute
from annotation.reviews.sampling import review_items_enqueue
from tests.factories import (
    ProjectFactory, TaskFactory, UserFactory, comparison_task, gold_comparison_task, member, model_version,
)
from training.models import GenerationJob, TrainingRun

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FEEDBACKLOOP_SCHEMATHESIS_EXAMPLES", "50"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _operations() -> list:
    from config.wsgi import application  # pytest-django has set Django up before collection

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = _operations()


def _takes_input(operation) -> bool:
    """Invalid input exists only for an operation with parameters or a body (auth headers aside)."""
    own = [p for p in operation.iter_parameters() if "x-original-security-type" not in p.definition]
    return bool(own or len(operation.body))


CASES = [(operation, GenerationMode.POSITIVE) for operation in OPERATIONS] + [
    (operation, GenerationMode.NEGATIVE) for operation in OPERATIONS if _takes_input(operation)
]


@pytest.fixture(autouse=True)
def _requests_share_the_test_transaction(monkeypatch):
    """As Django's test client does: the end of a request must not close the test's connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Nothing leaves the process: queued work would reach for a broker.
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda *a, **k: None)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(settings, tmp_path) -> str:
    settings.STORAGE_ROOT = tmp_path / "storage"
    settings.MODEL_ROOTS = [str(tmp_path)]
    project = ProjectFactory(slug="fuzzed")
    admin = member(project, Membership.Role.ADMIN, username="fuzz-admin")
    labeler = member(project, Membership.Role.LABELER, username="fuzz-labeler")
    for _ in range(3):
        TaskFactory(project=project)
        comparison_task(project=project)
    # Work in the review queue, so the review routes have an item to claim and decide.
    labeled = TaskFactory(project=project)
    work = Annotation.objects.create(task=labeled, labeler=labeler, kind="demonstration", text="Reviewed.")
    review_items_enqueue(annotation_ids=[work.pk], reason="fuzzed")
    gold_comparison_task(project=project)  # and a labeler's gold record, for the gold and qualification routes
    GoldRecord.objects.create(project=project, labeler=labeler, status="held_out", gold_served=3, gold_answered=3,
                              gold_correct=1, decided_answered=3, decided_correct=1)
    base = model_version(name="fuzz-base", kind="base", path="models/tiny")
    TrainingRun.objects.create(kind="sft", project=project, base_model=base, created_by=admin, status="running")
    GenerationJob.objects.create(project=project, model_version=base, k=2, prompt_ids=[], created_by=admin)
    UserFactory(username="someone-else")
    store.quality_report_set(report=quality_compute(project_id=project.pk))  # the quality API answers a report
    return Token.objects.create(user=admin).key


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.method.upper()} {op.path} {mode.value}" for op, mode in CASES]
)
def test_no_server_errors_and_responses_match_the_schema(operation, mode, admin_token):
    headers = {"Authorization": f"Token {admin_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    call()
