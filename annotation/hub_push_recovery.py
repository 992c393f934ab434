"""Hub pushes whose worker died mid-upload: each ends failed within about a minute, never "running" for ever.

An upload is one long blocking call into huggingface_hub, so its worker proves it lives with a
heartbeat thread that stamps the push every HEARTBEAT_SECONDS while the upload runs. The sweep,
which beat starts every SWEEP_SECONDS, ends a running push whose heartbeat is older than LOST_AFTER
and whose worker is gone (annotation/worker_processes.py: on the same host its pid, elsewhere the
heartbeat alone). A slow upload by a live worker is never ended.

A lost push ends failed rather than being retried: the access token was handed to the worker once
and never stored, so no other worker could upload with it. The user pushes again; `upload_folder`
makes the same commit again, so a push that had reached the Hub in part does no harm.

The sweep's end and the worker's own end are both conditional on the push still running, so only
one of them ever lands. The same sweep ends a push still queued when its token has expired: its
message was lost (a worker killed between taking it and claiming the push), and no worker could
upload it any more.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from .heartbeats import beating
from .models import HubPush
from .worker_processes import worker_alive

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
LOST_AFTER = timedelta(seconds=30)  # six missed heartbeats
SWEEP_SECONDS = 20.0
LOST = "The worker stopped during the upload"


def heartbeat(*, push_id: int):
    """Stamp the running push's heartbeat_at every HEARTBEAT_SECONDS, from a thread, until the block ends."""

    def stamp() -> None:
        try:
            HubPush.objects.filter(pk=push_id, status=HubPush.Status.RUNNING).update(heartbeat_at=timezone.now())
        except DatabaseError as error:  # a missed beat; the next one may pass
            logger.warning("Hub push %s: heartbeat not written: %s", push_id, error)

    return beating(stamp, every=HEARTBEAT_SECONDS, name=f"hub-push-{push_id}-heartbeat")


def hub_pushes_end_lost(*, lost_after: timedelta = LOST_AFTER, now: datetime | None = None) -> int:
    """End failed every running push whose worker is gone; how many were ended."""
    now = now or timezone.now()
    cutoff = now - lost_after
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)
    running = HubPush.objects.filter(stale, status=HubPush.Status.RUNNING).only("pk", "worker", "heartbeat_at",
                                                                                "updated_at")
    ended = 0
    for push in running:
        if worker_alive(worker=push.worker, heartbeat_at=push.heartbeat_at, now=now, stale=lost_after):
            continue  # a slow upload by a live worker
        since = (push.heartbeat_at or push.updated_at).strftime("%Y-%m-%d %H:%M:%S UTC")
        error = f"{LOST} (worker {push.worker or 'unknown'}, last heard from at {since}); push again."
        ended += HubPush.objects.filter(pk=push.pk, status=HubPush.Status.RUNNING, worker=push.worker).filter(
            stale
        ).update(status=HubPush.Status.FAILED, error=error, finished_at=now, updated_at=now)
    return ended


def hub_pushes_end_unstarted(*, older_than: timedelta, now: datetime | None = None) -> int:
    """End failed every push still queued `older_than` after it was made (the token's lifetime): its message was
    lost, or no worker could take it in time, and the token it needed is gone either way. How many were ended."""
    now = now or timezone.now()
    hours = older_than.total_seconds() / 3600
    error = (f"No worker began the upload within {hours:g} h, and the access token is kept only that long (it is "
             "never stored); push again.")
    return HubPush.objects.filter(status=HubPush.Status.QUEUED, created_at__lt=now - older_than).update(
        status=HubPush.Status.FAILED, error=error, finished_at=now, updated_at=now
    )
