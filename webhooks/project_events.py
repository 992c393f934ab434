"""project.completed: noticed by a worker after a task completes, so the submit pays nothing for it."""

from annotation.models import Project, Task

from . import payloads
from .events import event_emit, event_id_for
from .models import EventType


def project_completed_emit(*, project_id: int) -> bool:
    """Emit project.completed if the project has no open task left (gold tasks aside). True if emitted.

    Two last tasks completed at once may both notice it: the event's id is made from the project and
    its task count, so both name the same event and each endpoint gets one delivery. Tasks imported
    later make a new count, and so a new completion.
    """
    real = Task.objects.filter(project_id=project_id, is_gold=False)
    if real.filter(status=Task.Status.OPEN).exists():
        return False
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return False
    tasks = real.count()
    return event_emit(
        project_id=project_id, event_type=EventType.PROJECT_COMPLETED,
        data=payloads.project_data(project=project, tasks=tasks),
        event_id=event_id_for(EventType.PROJECT_COMPLETED, project_id, tasks),
    )
