"""What the loop wing plugs into annotation's extension points: the "Prioritise" button's scorer.

Annotation imports nothing from the loop; loop/apps.py calls `register()` once the apps are loaded.
"""

from annotation import extension_points


def prioritise(*, project) -> None:
    """The "Prioritise by reward-model uncertainty" button: queue active sampling's scoring."""
    from .active_sampling import active_sampling_schedule

    active_sampling_schedule(project=project)


def register() -> None:
    extension_points.register_scorer(prioritise)
