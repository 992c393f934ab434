"""The loop's generation.completed webhook event (docs/webhooks.md); evaluation.completed is in
loop/evaluation_completed.py, as it reads the evaluation's results."""

from training.models import GenerationJob
from webhooks import payloads
from webhooks.events import event_emit, event_id_for
from webhooks.models import EventType


def generation_completed_emit(*, job: GenerationJob) -> bool:
    return event_emit(
        project_id=job.project_id, event_type=EventType.GENERATION_COMPLETED,
        data=lambda: payloads.generation_data(job=job), event_id=event_id_for(EventType.GENERATION_COMPLETED, job.pk),
    )
