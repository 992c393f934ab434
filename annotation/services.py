"""Writes of the annotation app: projects, members, claiming, submitting, skipping and leases."""

import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from . import edits, extension_points, gold, qualification
from . import overlap as overlap_rules
from .errors import Conflict, InvalidInput
from .models import Annotation, Lease, Membership, Project, Response, Task
from .sql import claim as claiming
from .sql import submit as submitting
from .sql.run import insert, one_or_none
from .reviews import sampling
from .roles import CREATE_PROJECT_PERMISSION, can_create_projects
from .validation import clean_annotation_payload, clean_client_id, clean_skip_reason

CLAIM_ATTEMPTS = 8


# Projects and members -------------------------------------------------------------------------


def project_create(
    *, name: str, created_by: AbstractBaseUser, slug: str = "", guidelines: str = "", overlap: int = 1,
    lease_seconds: int = 600,
) -> Project:
    """Create a project with `created_by` as its admin; creating projects is a platform permission (roles.py)."""
    if not can_create_projects(created_by):
        raise PermissionDenied("You may not create projects: ask a superuser for the create-project permission.")
    if not name.strip():
        raise InvalidInput("A project needs a name.", field="name")
    if overlap < 1:
        raise InvalidInput("overlap must be at least 1.", field="overlap")
    if lease_seconds < 10:
        raise InvalidInput("lease_seconds must be at least 10.", field="lease_seconds")
    slug = slugify(slug or name)[:200] or "project"
    if Project.objects.filter(slug=slug).exists():
        raise InvalidInput(f"A project with the slug '{slug}' exists already.", field="slug")
    with transaction.atomic():
        project = Project.objects.create(
            name=name.strip(), slug=slug, guidelines=guidelines, overlap=overlap, lease_seconds=lease_seconds
        )
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.ADMIN)
    return project


def project_creator_set(*, user: AbstractBaseUser, allowed: bool = True) -> None:
    """Give (or take away) the platform permission to create projects; superusers always have it."""
    from django.contrib.auth.models import Permission

    app_label, codename = CREATE_PROJECT_PERMISSION.split(".")
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    if allowed:
        user.user_permissions.add(permission)
    else:
        user.user_permissions.remove(permission)
    for cache in ("_perm_cache", "_user_perm_cache"):  # has_perm must see the change on this object too
        user.__dict__.pop(cache, None)


def project_update(*, project: Project, **fields) -> Project:
    allowed = {
        "name", "guidelines", "overlap", "lease_seconds", "reward_model", "review_rate", *GOLD_SETTINGS,
        *overlap_rules.SETTINGS,
    }
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"Unknown field: {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    model = fields.get("reward_model")
    if model is not None and (model.kind != "reward" or model.project_id not in (None, project.pk)):
        raise InvalidInput("reward_model must be a reward model version of this project.", field="reward_model")
    if "overlap" in fields and fields["overlap"] < 1:
        raise InvalidInput("overlap must be at least 1.", field="overlap")
    if "lease_seconds" in fields and fields["lease_seconds"] < 10:
        raise InvalidInput("lease_seconds must be at least 10.", field="lease_seconds")
    if "review_rate" in fields:
        fields["review_rate"] = sampling.clean_review_rate(fields["review_rate"])
    _check_gold_settings(fields)
    overlap_rules.clean_settings(
        fields=fields, overlap=fields.get("overlap", project.overlap),
        dynamic=fields.get("dynamic_overlap", project.dynamic_overlap),
        max_overlap=fields.get("max_overlap", project.max_overlap),
    )
    was_overlap, was_dynamic, was_max = project.overlap, project.dynamic_overlap, project.max_overlap
    with transaction.atomic():
        for name, value in fields.items():
            setattr(project, name, value)
        project.save()
        if "overlap" in fields and fields["overlap"] != was_overlap:
            # Open tasks follow the new overlap; finished work is never undone. Gold tasks have no
            # overlap: they stay open for every labeler. (Only on a change: the settings page sends
            # the overlap on every save, and a save must not undo dynamic overlap's extra slots.)
            real = project.tasks.filter(is_gold=False)
            real.filter(status=Task.Status.OPEN).update(required=fields["overlap"])
            real.filter(status=Task.Status.OPEN, done__gte=F("required")).update(status=Task.Status.DONE)
            real.filter(status=Task.Status.DONE, done__lt=fields["overlap"]).update(
                required=fields["overlap"], status=Task.Status.OPEN
            )
        elif (was_dynamic, was_max) != (project.dynamic_overlap, project.max_overlap):
            _grown_tasks_follow(project=project)
        if {"qualification_tasks", "qualification_min_accuracy"} & set(fields):
            qualification.qualification_decide_due(project=project)
    return project


def _grown_tasks_follow(*, project: Project) -> None:
    """Open tasks that dynamic overlap grew shrink to the new cap (or to the overlap when it is off).

    A task that has its labels then is done; finished work is never undone.
    """
    cap = project.max_overlap if project.dynamic_overlap else project.overlap
    grown = project.tasks.filter(is_gold=False, status=Task.Status.OPEN, required__gt=max(cap, project.overlap))
    grown.update(required=max(cap, project.overlap))
    project.tasks.filter(is_gold=False, status=Task.Status.OPEN, done__gte=F("required")).update(
        status=Task.Status.DONE
    )


GOLD_SETTINGS = ("gold_rate", "gold_training_mode", "qualification_tasks", "qualification_min_accuracy")


def _check_gold_settings(fields: dict) -> None:
    """The bounds of gold.py, for callers that bypass the form and the serializer (which read them too)."""
    for name, top in (("gold_rate", gold.GOLD_RATE_MAX), ("qualification_min_accuracy", gold.ACCURACY_MAX)):
        if name in fields:
            value = fields[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
                raise InvalidInput(f"{name} must be a number from 0 to {top:g}.", field=name)
    if "qualification_tasks" in fields:
        value = fields["qualification_tasks"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= gold.QUALIFICATION_TASKS_MAX:
            raise InvalidInput(
                f"qualification_tasks must be a whole number from 0 to {gold.QUALIFICATION_TASKS_MAX}.",
                field="qualification_tasks",
            )
    if "gold_training_mode" in fields and not isinstance(fields["gold_training_mode"], bool):
        raise InvalidInput("gold_training_mode must be true or false.", field="gold_training_mode")


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Membership.Role.values)}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


# Claiming -------------------------------------------------------------------------------------


def _has_capacity(*, task: Task, labeler: AbstractBaseUser, now: datetime) -> bool:
    if task.is_gold:
        return True  # a gold task never fills up
    return claiming.task_has_room(task_id=task.pk, labeler_id=labeler.pk, now=now)


def task_claim_next(*, project: Project, labeler: AbstractBaseUser, kind: str | None = None) -> Task | None:
    """Return the labeler's leased task, or lease the best free one. None when nothing is left.

    See docs/architecture.md, "A label's path", and sql/claim.py for the statements. The
    candidate read skips rows other labelers hold locked; a lease they committed after its snapshot
    is caught by the capacity re-check in the statement that inserts the lease, under the task's
    row lock.
    The task carries `lease_expires_at`, the expiry of the labeler's lease on it.

    In a project with a gold rate or qualification (annotation/gold.py, qualification.py), the
    membership lock also reads the labeler's gold record; a held-out labeler, or a qualifying one
    with no gold task left to answer, gets NotQualified (403) instead of a task.
    """
    if kind is not None and kind not in Task.Kind.values:
        raise InvalidInput(f"kind must be one of {', '.join(Task.Kind.values)}.", field="kind")
    now = timezone.now()
    expires_at = now + timedelta(seconds=project.lease_seconds)
    gate = None
    with transaction.atomic():
        if gold.serving_on(project):
            is_member, task_id, lease_expires_at, record = claiming.held_lease_and_gold(
                project_id=project.pk, labeler_id=labeler.pk, kind=kind, now=now
            )
            if is_member:
                gate = qualification.claim_gate(project=project, labeler_id=labeler.pk, record=record, now=now)
        else:
            is_member, task_id, lease_expires_at = claiming.held_lease(
                project_id=project.pk, labeler_id=labeler.pk, kind=kind, now=now
            )
        if not is_member:
            raise InvalidInput("You are not a member of this project.", field="project")
        if gate is not None and gate.mode == qualification.Status.HELD_OUT:
            task_id = None  # not even a task leased before the decision
        elif task_id is None:
            task_id, lease_expires_at = _lease_next(
                project=project, labeler=labeler, kind=kind, now=now, expires_at=expires_at, gate=gate
            )
    if task_id is None:
        if gate is not None and gate.mode != qualification.Status.QUALIFIED:
            raise qualification.not_qualified_error(project=project, labeler=labeler, kind=kind)
        return None
    task = claiming.claimed_task(task_id=task_id)
    task.lease_expires_at = lease_expires_at
    return task


def _lease_next(
    *, project: Project, labeler: AbstractBaseUser, kind: str | None, now: datetime, expires_at: datetime,
    gate: "qualification.Gate | None",
) -> tuple[int | None, datetime | None]:
    """Lease a new task: gold only while qualifying; else the best real task, or at the gold rate a
    gold task instead. Returns (task id, lease expiry), or (None, None) when there is none."""
    if gate is not None and gate.mode == qualification.Status.QUALIFYING:
        if kind == Task.Kind.DEMONSTRATION:
            return None, None  # qualification grades comparisons only
        return _lease_gold(project=project, labeler=labeler, kind=Task.Kind.COMPARISON, now=now, expires_at=expires_at)
    drawn = gate is None or gate.rate <= 0
    skipped: list[int] = []
    while len(skipped) < CLAIM_ATTEMPTS:
        candidate = claiming.candidate_task_id(
            project_id=project.pk, labeler_id=labeler.pk, kind=kind, now=now, skipped=skipped
        )
        if candidate is None:
            # No real task: no gold either, which would then be the only thing served, and so told apart.
            return None, None
        if not drawn:
            drawn = True
            draw = gold.gold_draw(project_id=project.pk, labeler_id=labeler.pk, task_id=candidate, served=gate.served)
            if gold.serves_gold(rate=gate.rate, draw=draw):
                leased = _lease_gold(project=project, labeler=labeler, kind=kind, now=now, expires_at=expires_at)
                if leased[0] is not None:
                    return leased
                # Every gold task is done: the real one, as if the draw had said so.
        if claiming.lease_if_room(task_id=candidate, labeler_id=labeler.pk, expires_at=expires_at, now=now):
            return candidate, expires_at
        skipped.append(candidate)
    return None, None


def _lease_gold(
    *, project: Project, labeler: AbstractBaseUser, kind: str | None, now: datetime, expires_at: datetime
) -> tuple[int | None, datetime | None]:
    task_id = claiming.gold_candidate_id(project_id=project.pk, labeler_id=labeler.pk, kind=kind)
    if task_id is None:
        return None, None
    claiming.gold_lease(task_id=task_id, project_id=project.pk, labeler_id=labeler.pk, expires_at=expires_at, now=now)
    return task_id, expires_at


def lease_extend(*, task: Task, labeler: AbstractBaseUser) -> Lease:
    """The open page's heartbeat. An expired lease comes back only if the task still has room."""
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("project").get(pk=task.pk)
        lease = one_or_none(Lease.objects.filter(task=task, labeler=labeler))
        if lease is None:
            raise Conflict("You hold no lease on this task.")
        if lease.expires_at <= now and not _has_capacity(task=task, labeler=labeler, now=now):
            raise Conflict("Your lease expired and others took the task. You can still submit your work.")
        lease.expires_at = now + timedelta(seconds=task.project.lease_seconds)
        lease.save(update_fields=["expires_at"])
    return lease


# Submitting -----------------------------------------------------------------------------------


def _replay(*, existing: Annotation, task: Task, labeler: AbstractBaseUser) -> tuple[Annotation, bool]:
    if existing.task_id != task.pk or existing.labeler_id != labeler.pk:
        raise Conflict("This client_id belongs to another submission.", field="client_id")
    return existing, False


def annotation_submit(
    *, task: Task, labeler: AbstractBaseUser, client_id, data: dict, time_spent_ms: int = 0
) -> tuple[Annotation, bool]:
    """Store a labeler's work on a task. Idempotent on client_id: returns (annotation, created).

    Work that arrives after its lease expired is kept, never lost.
    """
    client_uuid = clean_client_id(client_id)
    existing = submitting.annotation_by_client_id(client_uuid)
    if existing is not None:
        return _replay(existing=existing, task=task, labeler=labeler)
    shown = submitting.shown_response_ids(task.pk) if task.kind == Task.Kind.COMPARISON else []
    fields = clean_annotation_payload(kind=task.kind, data=data, shown_response_ids=shown)
    return _store(task=task, labeler=labeler, client_uuid=client_uuid, fields=fields, time_spent_ms=time_spent_ms)


def task_skip(
    *, task: Task, labeler: AbstractBaseUser, reason: str, client_id=None, time_spent_ms: int = 0
) -> tuple[Annotation, bool]:
    client_uuid = clean_client_id(client_id) if client_id not in (None, "") else uuid.uuid4()
    existing = submitting.annotation_by_client_id(client_uuid)
    if existing is not None:
        return _replay(existing=existing, task=task, labeler=labeler)
    fields = {"kind": Annotation.Kind.SKIP, "reason": clean_skip_reason(reason)}
    return _store(task=task, labeler=labeler, client_uuid=client_uuid, fields=fields, time_spent_ms=time_spent_ms)


def _store(
    *, task: Task, labeler: AbstractBaseUser, client_uuid: uuid.UUID, fields: dict, time_spent_ms: int
) -> tuple[Annotation, bool]:
    if not isinstance(time_spent_ms, int) or isinstance(time_spent_ms, bool) or time_spent_ms < 0:
        raise InvalidInput("time_spent_ms must be a non-negative integer.", field="time_spent_ms")
    # Its qualification settings (gold) or its dynamic overlap (comparisons), loaded with the task by the API.
    project = task.project if task.is_gold or task.kind == Task.Kind.COMPARISON else None
    now = timezone.now()
    review_rate = task.project.review_rate  # loaded with the task by the API: no query
    try:
        with transaction.atomic():
            task = submitting.task_locked(task.pk)
            earlier = submitting.earlier_annotation(task=task, labeler=labeler, client_uuid=client_uuid)
            if earlier is not None:
                if earlier.client_id == client_uuid:
                    return _replay(existing=earlier, task=task, labeler=labeler)
                raise Conflict("You have already annotated or skipped this task.")
            # Release the lease and learn when it expired in one statement (undone if we raise).
            lease_expires_at = claiming.lease_release(task_id=task.pk, labeler_id=labeler.pk)
            if lease_expires_at is None:
                raise Conflict("Claim this task before submitting: you hold no lease on it.")
            if task.kind == Task.Kind.COMPARISON and submitting.authored_a_response(task=task, labeler=labeler):
                raise Conflict("You cannot judge a response you wrote.")
            if fields["kind"] == Annotation.Kind.DEMONSTRATION:
                fields["response"] = insert(Response(
                    prompt_id=task.prompt_id, text=fields["text"], source=Response.Source.HUMAN, author=labeler
                ))
            edits.annotation_fields_complete(task=task, labeler=labeler, fields=fields)  # edit, RM agreement
            if task.is_gold:
                fields["gold_correct"] = gold.gold_grade(gold=task.gold, fields=fields)
            annotation = insert(Annotation(
                task=task,
                project_id=task.project_id,
                labeler=labeler,
                client_id=client_uuid,
                time_spent_ms=min(time_spent_ms, 2**31 - 1),
                lease_expired=lease_expires_at <= now,
                **fields,
            ))
            was_open = task.status == Task.Status.OPEN
            if annotation.kind != Annotation.Kind.SKIP:
                submitting.count_done(task=task, now=now, project=project)
                if not task.is_gold:
                    sampling.annotation_sample_for_review(annotation=annotation, review_rate=review_rate)
            if task.is_gold:
                qualification.gold_answer_record(
                    task=task, project=project, labeler_id=labeler.pk, annotation=annotation, now=now
                )
            completed = was_open and task.status == Task.Status.DONE
            extension_points.label_stored(annotation=annotation, task=task, completed=completed)  # webhooks
            return annotation, True
    except IntegrityError:
        # A concurrent twin with the same client_id won the race: return what it stored.
        existing = submitting.annotation_by_client_id(client_uuid)
        if existing is None:
            raise
        return _replay(existing=existing, task=task, labeler=labeler)
