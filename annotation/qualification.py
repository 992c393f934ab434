"""Qualification and the labeler's gold record: the writes behind gold serving and grading.

When a project asks for qualification (qualification_tasks N > 0), a labeler is served only
gradable gold tasks (gold comparisons) until they have given N answers. Then the share of
them that matched the gold answer decides, once: at least qualification_min_accuracy X and
the labeler is qualified (real work starts, gold tasks come at the gold rate); below and they
are held out, and every claim answers 403 with a message saying why, until a project admin
re-admits them. A skipped gold comparison counts as a wrong answer while qualifying, so that
skipping cannot dodge the test.

- The tally is the labeler's gradable gold answers in the project so far, whenever given: in a
  project that turns qualification on later, a labeler who already answered N gold tasks is
  decided at once, on those.
- Changing N or X later decides nobody again: a decision stands (an admin re-admits). Labelers
  still qualifying are judged by the settings in force when their tally reaches N; lowering N
  decides those who have reached it (project_update calls qualification_decide_due).
- Turning qualification off (N = 0) lets everyone label; the records stay, and apply again if
  it is turned back on.
- Fewer gradable gold tasks than N: a labeler who has answered every one of them waits, with a
  403 saying so, until an admin imports more, lowers N, or admits them. Nobody is qualified on
  evidence the project never asked for.
- Removing a labeler and adding them back keeps their record (it is keyed by project and user,
  not by membership): a held-out labeler cannot start over that way.

The record's counts (GoldRecord) are updated in the submit's transaction, so the dashboard and
the API read one row per labeler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from . import gold
from .sql import submit as submitting
from .sql.claim import GoldState
from .errors import InvalidInput, NotQualified
from .models import Annotation, GoldRecord, Project, Task

Status = GoldRecord.Status
GOLD_CACHE_KEY = "annotation:gold:{project_id}"


def qualification_on(project: Project) -> bool:
    return project.qualification_tasks > 0


def _tally(record) -> int:
    """Answers that count toward qualification: graded gold answers and skipped gold comparisons."""
    return record.gold_answered + record.qualification_skips


# The claim's gate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """What the claim may serve this labeler: real work with gold at the rate, gold only, or nothing."""

    mode: str  # Status.QUALIFIED (real work; also when qualification is off), QUALIFYING, HELD_OUT
    rate: float
    served: int  # gold tasks served so far: part of the draw


def claim_gate(*, project: Project, labeler_id: int, record: GoldState | None, now: datetime) -> Gate:
    """The gate for a claim, from the record the claim's locking statement read.

    A labeler whose tally reached N under settings changed since is decided here (a rare write).
    """
    served = record.gold_served if record else 0
    if not qualification_on(project):
        return Gate(Status.QUALIFIED, project.gold_rate, served)
    status = record.status if record else Status.QUALIFYING
    if status == Status.QUALIFYING and record is not None and _tally(record) >= project.qualification_tasks:
        status = qualification_decide_due(project=project, labeler_ids=[labeler_id], now=now).get(labeler_id, status)
    return Gate(status, project.gold_rate, served)


def not_qualified_error(*, project: Project, labeler: AbstractBaseUser, kind: str | None) -> NotQualified:
    """The 403 for a labeler the gate stops: held out, qualifying on demonstrations, or out of gold."""
    state = qualification_state(project=project, labeler=labeler)
    message = state["message"]
    if state["status"] == Status.QUALIFYING:
        if kind == Task.Kind.DEMONSTRATION:
            message = (
                f"Qualify first: this project asks for {state['tasks']} answers to comparison tasks before any "
                "other work. Open the comparisons to start."
            )
        else:
            message = (
                f"You have answered all {state['answered']} qualification tasks this project has, and it asks for "
                f"{state['tasks']}. Wait until a project admin adds more, or admits you."
            )
        state = {**state, "message": message}
    return NotQualified(message, extra={"qualification": state})


# Grading, in the submit's transaction -------------------------------------------------------------


def _record_locked(*, project_id: int, labeler_id: int) -> GoldRecord:
    """The labeler's record, made if missing, under its row lock (two tabs' submits take turns)."""
    record = GoldRecord.objects.select_for_update().filter(project_id=project_id, labeler_id=labeler_id).first()
    if record is not None:
        return record
    # INSERT ... ON CONFLICT DO NOTHING: a concurrent first submit or claim may make it first.
    GoldRecord.objects.bulk_create([GoldRecord(project_id=project_id, labeler_id=labeler_id)], ignore_conflicts=True)
    return GoldRecord.objects.select_for_update().get(project_id=project_id, labeler_id=labeler_id)


def gold_answer_record(
    *, task: Task, project: Project, labeler_id: int, annotation: Annotation, now: datetime
) -> None:
    """Count a submit (or skip) on a gold task in the labeler's record; decide qualification when due.

    Runs inside the submit's transaction, after the annotation is stored with its gold_correct:
    one upsert (submitting.gold_record_count), and an update on the rare submit that decides.
    A demonstration's gold answer grades nothing, so it changes nothing here.
    """
    graded = annotation.gold_correct is not None
    skipped = annotation.kind == Annotation.Kind.SKIP and qualification_on(project)
    if task.kind != Task.Kind.COMPARISON or not (graded or skipped):
        return
    pk, status, answered, correct, skips = submitting.gold_record_count(
        project_id=task.project_id, labeler_id=labeler_id, answered=int(graded),
        correct=int(bool(annotation.gold_correct)), skips=int(skipped), now=now,
    )
    if status != Status.QUALIFYING or not qualification_on(project):
        return
    record = GoldRecord(pk=pk, status=status, gold_answered=answered, gold_correct=correct, qualification_skips=skips)
    _decide(record=record, project=project, now=now)
    if record.status != Status.QUALIFYING:
        record.save(update_fields=["status", "decided_answered", "decided_correct", "decided_at", "updated_at"])


def _decide(*, record: GoldRecord, project: Project, now: datetime) -> None:
    """Qualified or held out, once the tally reaches N (in place; the caller saves)."""
    tally = _tally(record)
    if record.status != Status.QUALIFYING or not qualification_on(project) or tally < project.qualification_tasks:
        return
    passed = gold.at_least(record.gold_correct, tally, project.qualification_min_accuracy)
    record.status = Status.QUALIFIED if passed else Status.HELD_OUT
    record.decided_answered, record.decided_correct, record.decided_at = tally, record.gold_correct, now


def qualification_decide_due(
    *, project: Project, labeler_ids: list[int] | None = None, now: datetime | None = None
) -> dict[int, str]:
    """Decide every qualifying labeler whose tally has reached N (after N was lowered, or turned on).

    Returns {labeler id: new status} for those decided. Runs over the project's records that are
    still qualifying: one row per labeler, never their annotations.
    """
    if not qualification_on(project):
        return {}
    now = now or timezone.now()
    records = GoldRecord.objects.select_for_update().filter(project=project, status=Status.QUALIFYING)
    if labeler_ids is not None:
        records = records.filter(labeler_id__in=labeler_ids)
    decided = {}
    with transaction.atomic():
        for record in records.order_by("id"):
            _decide(record=record, project=project, now=now)
            if record.status != Status.QUALIFYING:
                record.save()
                decided[record.labeler_id] = record.status
    if decided:
        cache.delete(GOLD_CACHE_KEY.format(project_id=project.pk))
    return decided


# The admin's side ---------------------------------------------------------------------------------


def labeler_readmit(*, project: Project, labeler: AbstractBaseUser, by: AbstractBaseUser) -> GoldRecord:
    """Let a held-out (or still qualifying) labeler do real work: qualified, by whom and when.

    The role check (roles.Action.MANAGE) is the caller's. The labeler must be a member.
    """
    if not project.memberships.filter(user=labeler).exists():
        raise InvalidInput(f"{labeler.get_username()} is not a member of this project.", field="user")
    now = timezone.now()
    with transaction.atomic():
        record = _record_locked(project_id=project.pk, labeler_id=labeler.pk)
        record.status = Status.QUALIFIED
        record.readmitted_by, record.readmitted_at = by, now
        if record.decided_at is None:
            record.decided_answered, record.decided_correct, record.decided_at = (
                _tally(record), record.gold_correct, now)
        record.save()
    cache.delete(GOLD_CACHE_KEY.format(project_id=project.pk))
    return record


# What the labeler is told ---------------------------------------------------------------------------


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def qualification_state(*, project: Project, labeler: AbstractBaseUser) -> dict:
    """The labeler's own qualification state, as the page and GET .../qualification/ show it.

    While qualifying it counts the answers given (every task served then is a qualification
    task, so the count reveals nothing). Once decided it shows the tally the decision was made
    on, never the live gold counts: those would tell which later tasks were gold.
    """
    record = GoldRecord.objects.filter(project=project, labeler=labeler).first()
    tasks, needed = project.qualification_tasks, project.qualification_min_accuracy
    state = {
        "status": "off", "tasks": tasks, "min_accuracy": needed, "answered": 0, "correct": None,
        "accuracy": None, "readmitted": bool(record and record.readmitted_at), "message": "",
    }
    if not qualification_on(project):
        state["message"] = "This project asks for no qualification."
        return state
    status = record.status if record else Status.QUALIFYING
    state["status"] = status
    if status == Status.QUALIFYING:
        state["answered"] = _tally(record) if record else 0
        state["message"] = (
            f"Qualification: this project first asks for {tasks} answers to comparison tasks whose answers are "
            f"known; at least {_percent(needed)} must match. {state['answered']} of {tasks} answered so far."
        )
        return state
    answered, correct = record.decided_answered or 0, record.decided_correct or 0
    accuracy = correct / answered if answered else None
    state.update(answered=answered, correct=correct, accuracy=accuracy)
    if status == Status.HELD_OUT:
        state["message"] = (
            f"You are held out of this project: {correct} of your {answered} qualification answers matched "
            f"({_percent(accuracy or 0)}), and it needs at least {_percent(needed)}. A project admin can re-admit you."
        )
    elif record.readmitted_at:
        state["message"] = "A project admin admitted you: you may label this project's tasks."
    else:
        state["message"] = (
            f"You are qualified: {correct} of your {answered} qualification answers matched "
            f"({_percent(accuracy or 0)})."
        )
    return state
