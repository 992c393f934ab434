"""Emitting a project's events: the one function every app calls, and the cheap check before it.

`event_emit` is called where the event happens (annotation's submit through annotation_hooks.py,
training's run worker and registry, loop's generation and evaluations). It asks first which event
types the project's active endpoints subscribe to: kept for a few seconds in the process and for a
few minutes in the shared cache, as accounts/authentication.py keeps tokens, so a label in a project
without webhooks costs a dictionary lookup, mostly, and never a query. Otherwise it enqueues the
event once the caller's transaction commits, so a worker never sees an event whose rows were rolled
back; the fan-out task makes one delivery per subscribed endpoint, reading the endpoints afresh.

An endpoint change clears both caches in the process that makes it; other processes see it within
LOCAL_SECONDS (a new endpoint may miss the events of its first seconds; a disabled one gets nothing,
as the fan-out reads the endpoints again).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from jobs.queue import job_enqueue

from .models import EventType, WebhookEndpoint

EVENT_TYPES = tuple(EventType.values)
_CACHE_SECONDS = 300
LOCAL_SECONDS = 5.0
_local: dict[int, tuple[float, frozenset[str]]] = {}
_ID_NAMESPACE = uuid.UUID("6f1c2a52-3d0e-4c55-9d8e-0b7f4d0f6a11")


def _cache_key(project_id: int) -> str:
    return f"webhooks:events:{project_id}"


def subscribed_events(*, project_id: int) -> frozenset[str]:
    """The event types the project's active endpoints subscribe to: from the process, the cache, or an
    indexed query on a miss."""
    now = time.monotonic()
    hit = _local.get(project_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    key = _cache_key(project_id)
    found = cache.get(key)
    if found is None:
        found = sorted({
            event
            for events in WebhookEndpoint.objects.filter(project_id=project_id, active=True).values_list(
                "events", flat=True
            )
            for event in events
        })
        cache.set(key, found, _CACHE_SECONDS)
    if len(_local) > 10_000:
        _local.clear()
    _local[project_id] = (now + LOCAL_SECONDS, frozenset(found))
    return _local[project_id][1]


def _forget(project_id: int) -> None:
    cache.delete(_cache_key(project_id))
    _local.pop(project_id, None)


def subscriptions_changed(*, project_id: int) -> None:
    """Forget the cached subscriptions now (for this transaction) and again once the change commits."""
    _forget(project_id)
    transaction.on_commit(lambda: _forget(project_id))


def event_id_for(*parts) -> str:
    """A stable event id for an event that may be noticed twice (a project completing): both get one id."""
    return "msg_" + uuid.uuid5(_ID_NAMESPACE, ":".join(str(part) for part in parts)).hex


def event_emit(
    *, project_id: int | None, event_type: str, data: dict | Callable[[], dict], event_id: str | None = None,
    subscribed: frozenset[str] | None = None,
) -> bool:
    """Queue the event for the project's subscribed endpoints after commit. False: nobody subscribes.

    `data` may be a function, called only when someone subscribes. Ids and useful fields only:
    never a secret or a password. `subscribed`: the project's subscriptions, if the caller read them.
    """
    if project_id is None:
        return False
    if subscribed is None:
        subscribed = subscribed_events(project_id=project_id)
    if event_type not in subscribed:
        return False
    event = {
        "id": event_id or "msg_" + uuid.uuid4().hex,
        "type": event_type,
        "project_id": project_id,
        "timestamp": timezone.now().isoformat(),
        "data": data() if callable(data) else data,
    }
    transaction.on_commit(lambda: _enqueue(event))
    return True


def _enqueue(event: dict[str, Any]) -> None:
    job_enqueue(task_name="webhooks.event_fanout", args=[event])
