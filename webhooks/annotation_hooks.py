"""What the webhooks plug into annotation (annotation/extension_points.py): the label listener.

It runs in every submit's transaction, so it costs one cache read when the project has no endpoint
for these events, and queues everything else after the commit.
"""

from django.db import transaction

from annotation import extension_points
from jobs.queue import job_enqueue

from . import payloads
from .events import event_emit, subscribed_events
from .models import EventType


def label_stored(*, annotation, task, completed: bool) -> None:
    events = subscribed_events(project_id=task.project_id)
    if not events:
        return
    if EventType.ANNOTATION_CREATED in events:
        event_emit(project_id=task.project_id, event_type=EventType.ANNOTATION_CREATED, subscribed=events,
                   data=payloads.annotation_data(annotation=annotation, task=task))
    if not completed:
        return
    if EventType.TASK_COMPLETED in events:
        event_emit(project_id=task.project_id, event_type=EventType.TASK_COMPLETED, subscribed=events,
                   data=payloads.task_data(task=task))
    if EventType.PROJECT_COMPLETED in events:
        project_id = task.project_id
        transaction.on_commit(lambda: job_enqueue(task_name="webhooks.project_completion_check", args=[project_id]))


def register() -> None:
    extension_points.register_label_listener(label_stored)
