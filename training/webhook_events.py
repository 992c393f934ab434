"""Training's webhook events: run.succeeded, run.failed and model.registered (docs/webhooks.md).

Each event's id comes from the row it tells of (and, for a run, when it ended), so telling it twice,
as an idempotent worker step may, still makes one delivery per endpoint.
"""

from webhooks import payloads
from webhooks.events import event_emit, event_id_for
from webhooks.models import EventType

from .models import ModelVersion, TrainingRun

_RUN_EVENTS = {TrainingRun.Status.SUCCEEDED: EventType.RUN_SUCCEEDED, TrainingRun.Status.FAILED: EventType.RUN_FAILED}


def run_finished_emit(*, run: TrainingRun) -> bool:
    event_type = _RUN_EVENTS.get(run.status)
    if event_type is None:
        return False
    return event_emit(
        project_id=run.project_id, event_type=event_type, data=lambda: payloads.run_data(run=run),
        event_id=event_id_for(event_type, run.pk, run.finished_at.isoformat() if run.finished_at else ""),
    )


def model_registered_emit(*, model: ModelVersion) -> bool:
    """Only a project's model: a global one belongs to no project's endpoints."""
    return event_emit(
        project_id=model.project_id, event_type=EventType.MODEL_REGISTERED,
        data=lambda: payloads.model_data(model=model), event_id=event_id_for(EventType.MODEL_REGISTERED, model.pk),
    )
