"""Uploads to the Hugging Face Hub (models.HubPush): checked in the request, done by a Celery worker.

The request checks the repo id and the token, stores the push (without the token) and hands the
token to the worker through the cache, under the push's id, for TOKEN_SECONDS: the token never
reaches the database, a Celery message or a log line. The worker takes the token once (it is deleted
as it is read), claims the push (a conditional UPDATE, so a message delivered twice uploads once),
builds the folder to upload, and calls huggingface_hub: `HfApi.create_repo(exist_ok=True)`, then
`upload_folder`. A push is marked succeeded only once the Hub has taken the folder; a Hub that
cannot be reached, refuses the token, or any other failure marks it failed with the reason, and
the reason never holds the token. While it uploads, the worker's heartbeat marks the push alive; a
push whose worker died mid-upload is ended failed by the sweep (annotation/hub_push_recovery.py).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .errors import InvalidInput
from .hub_push_recovery import heartbeat
from .models import HubPush, Project
from .roles import Action, project_ids_for
from .worker_processes import worker_name

logger = logging.getLogger(__name__)

TOKEN_SECONDS = 3600
MAX_TOKEN_CHARS = 200
UNREACHABLE = "The Hugging Face Hub could not be reached: "
REFUSED = "The Hugging Face Hub refused the upload: "


def _token_key(push_id: int) -> str:
    return f"annotation:hub-push-token:{push_id}"


def repo_id_check(value) -> str:
    """An `owner/name` repo id the Hub accepts (huggingface_hub's own rules), or InvalidInput naming repo_id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("repo_id is required: the Hub repository as owner/name.", field="repo_id")
    value = value.strip()
    if value.count("/") != 1:
        raise InvalidInput("repo_id must be owner/name (one slash), e.g. my-org/my-dataset.", field="repo_id")
    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        raise InvalidInput(f"repo_id is not a valid Hub repository id: {exc}", field="repo_id") from None
    return value


def token_check(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("token is required: a Hugging Face access token with write access.", field="token")
    value = value.strip()
    if len(value) > MAX_TOKEN_CHARS or any(ch.isspace() for ch in value):
        raise InvalidInput(f"token must be one word of at most {MAX_TOKEN_CHARS} characters.", field="token")
    return value


def private_check(value) -> bool:
    if value in (None, ""):
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "on", "yes", "false", "0", "off", "no"):
        return value.lower() in ("true", "1", "on", "yes")
    raise InvalidInput("private must be true or false.", field="private")


# Writes ------------------------------------------------------------------------------------------


def hub_push_create(
    *, kind: str, repo_id, token, private, created_by: AbstractBaseUser | None, task_name: str,
    project: Project | None = None, model_version=None, fmt: str = "", filters: dict | None = None,
    license: str = "",
) -> HubPush:
    """Store a push (no token), hand the token to the worker, and queue the Celery task `task_name` once committed."""
    repo_id = repo_id_check(repo_id)
    token = token_check(token)
    private = private_check(private)
    with transaction.atomic():
        push = HubPush.objects.create(
            kind=kind, project=project, model_version=model_version, repo_id=repo_id, private=private,
            format=fmt, filters=filters or {}, license=license, created_by=created_by,
        )
        cache.set(_token_key(push.pk), token, TOKEN_SECONDS)
        transaction.on_commit(lambda: _enqueue(task_name, push.pk))
    return push


def _enqueue(task_name: str, push_id: int) -> None:
    """By the task's pinned name, so no module imports another's tasks; the routes apply all the same."""
    from celery import current_app

    task = current_app.tasks.get(task_name)
    if task is not None:
        task.apply_async(args=[push_id])
    else:
        current_app.send_task(task_name, args=[push_id])


def hub_push_run(*, push_id: int, folder_for: Callable[[HubPush, Path], tuple[Path, int | None]]) -> str:
    """Upload the push's folder: `folder_for(push, scratch)` gives the folder (and its rows, if a dataset).

    Returns the final status. A push that is not queued (delivered twice, or already done) is left alone.
    """
    token = cache.get(_token_key(push_id))
    cache.delete(_token_key(push_id))
    now = timezone.now()
    claimed = HubPush.objects.filter(pk=push_id, status=HubPush.Status.QUEUED).update(
        status=HubPush.Status.RUNNING, worker=worker_name(), heartbeat_at=now, updated_at=now
    )
    if not claimed:
        return "skipped"
    push = HubPush.objects.select_related("project", "model_version").get(pk=push_id)
    if not token:
        return _finish(push, error="The access token was no longer held when the upload began (it is kept for "
                                   "an hour and never stored): push again with the token.")
    try:
        with heartbeat(push_id=push.pk), tempfile.TemporaryDirectory(prefix="feedbackloop-hub-") as scratch:
            folder, rows = folder_for(push, Path(scratch))
            url = _upload(push, folder=folder, token=token)
    except Exception as exc:  # every failure is the push's outcome, never a success
        return _finish(push, error=_reason(exc, token=token))
    return _finish(push, url=url, rows=rows)


def _upload(push: HubPush, *, folder: Path, token: str) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_type = "dataset" if push.kind == HubPush.Kind.DATASET else "model"
    repo = api.create_repo(push.repo_id, repo_type=repo_type, private=push.private, exist_ok=True)
    api.upload_folder(
        repo_id=push.repo_id, repo_type=repo_type, folder_path=str(folder),
        commit_message=f"Upload from FeedbackLoop ({push.kind} push {push.pk})",
    )
    return str(getattr(repo, "url", "") or repo)


def _reason(exc: Exception, *, token: str) -> str:
    """What the user reads: unreachable, refused, or the failure itself; the token is never part of it."""
    from huggingface_hub.errors import HfHubHTTPError

    detail = str(exc).replace(token, "***") or type(exc).__name__
    if isinstance(exc, HfHubHTTPError):
        return REFUSED + detail
    if isinstance(exc, (ConnectionError, TimeoutError)) or _is_transport_error(exc):
        return UNREACHABLE + detail
    if isinstance(exc, InvalidInput):
        return exc.message
    logger.warning("A Hub push failed: %s: %s", type(exc).__name__, detail)
    return f"The upload failed: {detail}"


def _is_transport_error(exc: Exception) -> bool:
    """huggingface_hub's HTTP client's network errors (connection refused, DNS, timeouts)."""
    try:
        import httpx2
    except ImportError:  # an older huggingface_hub on httpx
        import httpx as httpx2
    return isinstance(exc, httpx2.TransportError)


def _finish(push: HubPush, *, error: str = "", url: str = "", rows: int | None = None) -> str:
    """End the running push; one the sweep has already ended (its worker was judged lost) keeps that end."""
    status = HubPush.Status.FAILED if error else HubPush.Status.SUCCEEDED
    ended = HubPush.objects.filter(pk=push.pk, status=HubPush.Status.RUNNING).update(
        status=status, error=error, url=url, rows=rows, finished_at=timezone.now(), updated_at=timezone.now()
    )
    return status if ended else HubPush.objects.values_list("status", flat=True).get(pk=push.pk)


# Reads -------------------------------------------------------------------------------------------


def hub_push_payload(push: HubPush) -> dict:
    return {
        "id": push.pk, "kind": push.kind, "project": push.project_id, "model": push.model_version_id,
        "repo_id": push.repo_id, "private": push.private, "format": push.format, "filters": push.filters,
        "license": push.license, "status": push.status, "error": push.error, "url": push.url, "rows": push.rows,
        "created_at": push.created_at, "finished_at": push.finished_at,
    }


def dataset_pushes(*, project: Project, limit: int = 10) -> QuerySet[HubPush]:
    return HubPush.objects.filter(project=project, kind=HubPush.Kind.DATASET).order_by("-created_at", "-id")[:limit]


def hub_push_list_for_user(*, user: AbstractBaseUser) -> QuerySet[HubPush]:
    """Pushes the user may see: a project's dataset pushes for its exporters, model pushes for those who may
    train in the model's project, and a global model's pushes for whoever started them."""
    if not user.is_authenticated:
        return HubPush.objects.none()
    where = Q(kind=HubPush.Kind.DATASET, project_id__in=project_ids_for(user=user, action=Action.EXPORT))
    where |= Q(kind=HubPush.Kind.MODEL, project_id__in=project_ids_for(user=user, action=Action.TRAIN))
    where |= Q(kind=HubPush.Kind.MODEL, project__isnull=True, created_by=user)
    return HubPush.objects.filter(where)
