"""Where other apps plug into annotation, so that annotation imports none of them.

Annotation is the bottom of the platform: training reads its labels, never the other way round.
The few places where an annotation page or rule needs something only another app knows ask here,
and that app registers its answer in its AppConfig.ready() (training/apps.py does):

- dashboard panels: extra data for the project dashboard, each under its own key, for the roles
  that hold the panel's action (the reward-model staleness panel);
- the scorer: what the dashboard's and settings' "Prioritise" button queues (active sampling);
- freeze checks: whether an annotation is frozen into something that depends on it (a dataset
  snapshot), so that undo refuses to take it back;
- label listeners: told of each new annotation (and whether it completed its task) inside the
  submit's transaction, so that webhooks and evaluations learn of it (webhooks/annotation_hooks.py,
  loop/annotation_hooks.py). They run on every label, so each must be cheap and queue its work
  with transaction.on_commit.

The registries are module-level lists: registering the same callable twice keeps one entry, so a
ready() that runs twice (tests that reload apps) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput


@dataclass(frozen=True)
class DashboardPanel:
    """One key of the dashboard's template data, built by `build(project=...)` for holders of `action`."""

    key: str
    action: str  # a roles.Action value
    build: Callable[..., Any]


_panels: list[DashboardPanel] = []
_scorers: list[Callable[..., None]] = []
_freeze_checks: list[Callable[..., bool]] = []
_label_listeners: list[Callable[..., None]] = []


def _add(registry: list, item) -> None:
    if item not in registry:
        registry.append(item)


def register_dashboard_panel(*, key: str, action: str, build: Callable[..., Any]) -> None:
    _add(_panels, DashboardPanel(key=key, action=action, build=build))


def dashboard_panels(*, project, actions) -> dict[str, Any]:
    """{key: data} of every registered panel that one of `actions` may see, for the project."""
    return {panel.key: panel.build(project=project) for panel in _panels if panel.action in actions}


def register_scorer(schedule: Callable[..., None]) -> None:
    """`schedule(project=...)` queues the scoring of the project's open comparisons, or raises a ServiceError."""
    _add(_scorers, schedule)


def scoring_schedule(*, project) -> None:
    """Queue the project's scoring with the registered scorer; InvalidInput when no app provides one."""
    if not _scorers:
        raise InvalidInput("No scorer is installed: prioritising needs the loop app.", field="project")
    _scorers[-1](project=project)


def register_freeze_check(check: Callable[..., bool]) -> None:
    """`check(annotation=...)` is True when the annotation is frozen into something that depends on it."""
    _add(_freeze_checks, check)


def annotation_frozen(*, annotation) -> bool:
    return any(check(annotation=annotation) for check in _freeze_checks)


def register_label_listener(listener: Callable[..., None]) -> None:
    """`listener(annotation=..., task=..., completed=...)` runs in the submit's transaction after a new label.

    `completed` is True when this label closed the task (it has the labels it requires).
    """
    _add(_label_listeners, listener)


def label_stored(*, annotation, task, completed: bool) -> None:
    for listener in _label_listeners:
        listener(annotation=annotation, task=task, completed=completed)
