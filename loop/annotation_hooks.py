"""What the loop wing plugs into annotation's extension points: the "Prioritise" button's scorer, and
the label listener that notices an A/B evaluation's last comparison being labeled (evaluation.completed).

Annotation imports nothing from the loop; loop/apps.py calls `register()` once the apps are loaded.
"""

from annotation import extension_points


def prioritise(*, project) -> None:
    """The "Prioritise by reward-model uncertainty" button: queue active sampling's scoring."""
    from .active_sampling import active_sampling_schedule

    active_sampling_schedule(project=project)


def evaluation_label_stored(*, annotation, task, completed: bool) -> None:
    """Only a completed evaluation task of a project with a subscribed endpoint costs more than a dict lookup."""
    evaluation_id = task.metadata.get("evaluation") if completed and isinstance(task.metadata, dict) else None
    if evaluation_id is None:
        return
    from .evaluation_completed import evaluation_check_queue

    evaluation_check_queue(project_id=task.project_id, evaluation_id=evaluation_id)


def register() -> None:
    extension_points.register_scorer(prioritise)
    extension_points.register_label_listener(evaluation_label_stored)
