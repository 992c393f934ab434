"""The hot path's plain SQL (annotation/sql/) gives the instances and rows the ORM would."""

import uuid
from datetime import datetime

import pytest
from django.http import Http404

from annotation import selectors
from annotation.models import Annotation, Membership, Project, Prompt, Response, Task
from annotation.sql.run import insert
from tests.factories import ProjectFactory, TaskFactory, member

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_task_get_for_member_loads_task_project_and_prompt_as_the_orm_does():
    project = ProjectFactory(guidelines="Be *kind*.", overlap=2)
    labeler = member(project)
    task = TaskFactory(project=project, priority=3, metadata={"source": "import", "tags": ["a", 1]}, reward_margin=0.25)

    loaded = selectors.task_get_for_member(user=labeler, task_id=task.pk)

    assert fields_of(loaded) == fields_of(Task.objects.get(pk=task.pk))
    assert fields_of(loaded.project) == fields_of(Project.objects.get(pk=project.pk))
    assert fields_of(loaded.prompt) == fields_of(Prompt.objects.get(pk=task.prompt_id))
    assert loaded.metadata == {"source": "import", "tags": ["a", 1]}  # JSON decoded, not text
    assert isinstance(loaded.created_at, datetime) and loaded.created_at.tzinfo is not None
    assert not loaded._state.adding


def test_task_get_for_member_hides_tasks_of_other_projects():
    task = TaskFactory()
    outsider = member(ProjectFactory())
    with pytest.raises(Http404):
        selectors.task_get_for_member(user=outsider, task_id=task.pk)


def test_membership_get_returns_the_role_and_project_and_404s_outsiders():
    project = ProjectFactory()
    admin = member(project, role=Membership.Role.ADMIN)

    membership = selectors.membership_get(user=admin, project_id=project.pk)

    assert membership.role == Membership.Role.ADMIN
    assert fields_of(membership.project) == fields_of(Project.objects.get(pk=project.pk))
    for user, project_id in [(member(ProjectFactory()), project.pk), (admin, "not-a-number"), (admin, project.pk + 999)]:
        with pytest.raises(Http404):
            selectors.membership_get(user=user, project_id=project_id)


def test_insert_stores_what_the_orm_reads_back():
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project, kind=Task.Kind.COMPARISON)
    shown = [Response.objects.create(prompt=task.prompt, text=t, source=Response.Source.MODEL) for t in "ab"]
    client_id = uuid.uuid4()

    annotation = insert(Annotation(
        task=task, project_id=project.pk, labeler=labeler, client_id=client_id, kind=Annotation.Kind.COMPARISON,
        ranking=[[shown[1].pk], [shown[0].pk]], strength=Annotation.Strength.MUCH_BETTER,
        flags={str(shown[0].pk): ["unsafe"]}, time_spent_ms=1234,
    ))

    assert annotation.pk is not None and not annotation._state.adding
    stored = Annotation.objects.get(client_id=client_id)
    assert stored.pk == annotation.pk
    assert stored.ranking == [[shown[1].pk], [shown[0].pk]]
    assert stored.flags == {str(shown[0].pk): ["unsafe"]}
    assert stored.strength == Annotation.Strength.MUCH_BETTER and stored.time_spent_ms == 1234
    assert stored.created_at == annotation.created_at and stored.created_at.tzinfo is not None


@pytest.mark.django_db(transaction=True)  # real transactions: a test's own would hide the end of SET LOCAL
def test_the_claim_skips_waiting_for_fsync_in_its_own_transaction_only():
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.sql import claim as claiming

    project = ProjectFactory()
    labeler = member(project)

    def synchronous_commit():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        assert claiming.held_lease(project_id=project.pk, labeler_id=labeler.pk, kind=None, now=timezone.now()) == (
            True, None, None)
        inside = synchronous_commit() if connection.vendor == "postgresql" else "off"
    assert inside == "off"
    if connection.vendor == "postgresql":  # SQLite has no such setting; CI runs this on PostgreSQL
        assert synchronous_commit() == "on"
