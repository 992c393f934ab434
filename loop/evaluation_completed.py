"""evaluation.completed (docs/webhooks.md): every comparison of an A/B evaluation has its labels.

loop/annotation_hooks.py notices a completed evaluation task in the submit and, when the project
subscribes, queues the check after commit (loop.evaluation_completion_check); a worker runs it here.
"""

from django.db import transaction

from jobs.queue import job_enqueue
from training.models import Evaluation
from webhooks.events import event_emit, event_id_for, subscribed_events
from webhooks.models import EventType

from . import evaluation as evaluations


def evaluation_check_queue(*, project_id: int, evaluation_id: int) -> None:
    """In the submit's transaction: queue the check after commit, if an endpoint wants the event."""
    if EventType.EVALUATION_COMPLETED not in subscribed_events(project_id=project_id):
        return
    transaction.on_commit(lambda: job_enqueue(task_name="loop.evaluation_completion_check", args=[evaluation_id]))


def evaluation_completed_emit(*, evaluation_id: int) -> bool:
    """Emit evaluation.completed with the results if every comparison of the evaluation has its labels.

    Its id comes from the evaluation and the judgements counted, so two last labels noticed at once
    name one event, and a reopened task that completes again makes a new one.
    """
    evaluation = Evaluation.objects.select_related("model_a", "model_b").filter(pk=evaluation_id).first()
    if evaluation is None:
        return False
    results = evaluations.evaluation_results(evaluation=evaluation)
    if results["status"] != "complete":
        return False
    return event_emit(
        project_id=evaluation.project_id, event_type=EventType.EVALUATION_COMPLETED,
        data={"id": evaluation.pk, "project_id": evaluation.project_id, **results},
        event_id=event_id_for(EventType.EVALUATION_COMPLETED, evaluation.pk, results["n"]),
    )
