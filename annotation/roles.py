"""Who may do what: one table of project roles and actions, and one check for API, pages and CLI.

A user's rights in a project come from their membership's role alone. Every view, API endpoint
and management command that acts on a project asks `project_access(user=..., project_id=...,
action=...)`: a non-member gets a 404 (another project's existence is never revealed), a member
whose role lacks the action gets a 403. Lists are scoped with `project_ids_for(user=...,
action=...)`, so a list never shows what the matching detail would refuse.

Creating a project is a platform right, not a project one: superusers have it, and others get it
from Django admin or `manage.py grant_project_creator` (the `annotation.create_project`
permission). Whoever creates a project becomes its admin.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from .models import Membership, Project
from .selectors import membership_get

Role = Membership.Role
CREATE_PROJECT_PERMISSION = "annotation.create_project"


class Action(StrEnum):
    LABEL = "label"  # claim, submit and skip tasks, see one's own work
    DASHBOARD = "dashboard"  # progress, labelers' work, agreement
    EXPORT = "export"  # download the labels (sft, preference, raw)
    TRAIN = "train"  # runs, generation, evaluations and the model registry: read, start, cancel
    MANAGE = "manage"  # settings, members, imports
    REVIEW = "review"  # claim from the review queue, accept, reject or correct others' annotations


# The whole permission model. A role not listed here may do nothing.
PERMISSIONS: dict[str, frozenset[Action]] = {
    Role.LABELER: frozenset({Action.LABEL}),
    Role.REVIEWER: frozenset({Action.LABEL, Action.REVIEW}),
    Role.ENGINEER: frozenset({Action.LABEL, Action.DASHBOARD, Action.EXPORT, Action.TRAIN}),
    Role.ADMIN: frozenset(Action),
}

# What a refused member reads (a 403's detail, the 403 page, the CLI's error).
REFUSALS = {
    Action.LABEL: "Only members of the project may label its tasks.",
    Action.DASHBOARD: "Only the project's admins and engineers may see its dashboard.",
    Action.EXPORT: "Only the project's admins and engineers may export its labels.",
    Action.TRAIN: "Only the project's admins and engineers may see or start runs, generation, evaluations and models.",
    Action.MANAGE: "Only the project's admins may change its settings, members and prompts.",
    Action.REVIEW: "Only the project's reviewers and admins may review its labels.",
}


def role_allows(role: str | None, action: Action) -> bool:
    return action in PERMISSIONS.get(role or "", frozenset())


def role_actions(role: str | None) -> frozenset[Action]:
    """Everything a role may do, for templates that show or hide links (`"train" in can`)."""
    return PERMISSIONS.get(role or "", frozenset())


def roles_allowed(action: Action) -> list[str]:
    return [role for role, actions in PERMISSIONS.items() if action in actions]


def project_access(*, user: AbstractBaseUser, project_id, action: Action) -> Membership:
    """The user's membership of the project if their role allows `action`: 404 for non-members, 403 else.

    The membership carries its project (`membership.project`), loaded by the same query.
    """
    membership = membership_get(user=user, project_id=project_id)
    if not role_allows(membership.role, action):
        raise PermissionDenied(REFUSALS[action])
    return membership


def project_ids_for(*, user: AbstractBaseUser, action: Action) -> QuerySet:
    """A subquery of the ids of the projects where the user's role allows `action`."""
    if not user.is_authenticated:
        return Membership.objects.none().values("project_id")
    return Membership.objects.filter(user=user, role__in=roles_allowed(action)).values("project_id")


def projects_for(*, user: AbstractBaseUser, action: Action) -> QuerySet[Project]:
    return Project.objects.filter(pk__in=project_ids_for(user=user, action=action)).order_by("name", "id")


def may_anywhere(*, user: AbstractBaseUser, action: Action) -> bool:
    """Does the user's role allow `action` in at least one project? (Whole-platform pages and lists.)"""
    return project_ids_for(user=user, action=action).exists()


def require_anywhere(*, user: AbstractBaseUser, action: Action) -> None:
    """403 unless the user may do `action` in some project: a list that could only ever be empty is refused."""
    if not may_anywhere(user=user, action=action):
        raise PermissionDenied(REFUSALS[action])


def can_create_projects(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(CREATE_PROJECT_PERMISSION))
