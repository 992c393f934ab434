"""What training plugs into annotation's extension points (annotation/extension_points.py).

Annotation imports nothing from training; training/apps.py calls `register()` once the apps are
loaded. The staleness module is imported on first use, as the pages that need it did before. The
"Prioritise" scorer is the loop wing's (loop/annotation_hooks.py).
"""

from annotation import extension_points
from annotation.roles import Action


def reward_checks_panel(*, project) -> list[dict]:
    """The dashboard's reward-model staleness panel: each reward model of the project with its last check."""
    from .staleness import reward_checks_for_project

    return reward_checks_for_project(project=project)


def annotation_in_snapshot(*, annotation) -> bool:
    """Whether a dataset snapshot of the project, made after the annotation, has frozen it (a run may train on it)."""
    from .models import DatasetSnapshot

    return (
        DatasetSnapshot.objects.filter(project_id=annotation.project_id, created_at__gte=annotation.created_at)
        .exclude(format=DatasetSnapshot.Format.PROMPTS)
        .exists()
    )


def register() -> None:
    extension_points.register_dashboard_panel(key="reward_checks", action=Action.TRAIN, build=reward_checks_panel)
    extension_points.register_freeze_check(annotation_in_snapshot)
