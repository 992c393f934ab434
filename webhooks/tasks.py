"""Celery tasks of the webhooks: thin, by id, on the default queue (CELERY_TASK_ROUTES["webhooks.*"]).

Names are pinned with `name=`, so queued messages survive a move of this module.
"""

from celery import shared_task

from . import delivery, project_events, services

# An attempt waits WEBHOOKS_TIMEOUT_SECONDS at most; the limits only stop a stuck worker.
LIMITS = {"soft_time_limit": 120, "time_limit": 150}


@shared_task(name="webhooks.event_fanout", ignore_result=True, **LIMITS)
def event_fanout(event: dict) -> int:
    """One delivery per subscribed endpoint (once, however often the message comes), each sent at once."""
    made = delivery.deliveries_create(event=event)
    for delivery_id in made:
        webhook_deliver.delay(delivery_id)
    return len(made)


@shared_task(name="webhooks.deliver", bind=True, ignore_result=True, max_retries=None, **LIMITS)
def webhook_deliver(self, delivery_id: int) -> str:
    """One attempt; a failure that may pass is tried again after the delivery's backoff."""
    result = delivery.delivery_attempt(delivery_id=delivery_id)
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)
    return result.status


@shared_task(name="webhooks.project_completion_check", ignore_result=True, **LIMITS)
def project_completion_check(project_id: int) -> bool:
    """A task of the project was completed: emit project.completed if it was the last open one."""
    return project_events.project_completed_emit(project_id=project_id)


@shared_task(name="webhooks.deliveries_resume", ignore_result=True, **LIMITS)
def deliveries_resume() -> int:
    """Beat: send again the pending deliveries whose message was lost (a worker died mid-wait), and erase
    the previous secrets whose grace is over."""
    services.previous_secrets_erase_expired()
    overdue = delivery.deliveries_overdue()
    for delivery_id in overdue:
        webhook_deliver.delay(delivery_id)
    return len(overdue)
