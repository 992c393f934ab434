"""Writes behind the project admin pages: adding, re-roling and removing members.

A project always keeps at least one admin. The admin rows are locked while the check runs, so
two admins removing each other at the same moment cannot leave the project without one.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from . import services
from .errors import Conflict, InvalidInput
from .models import Lease, Membership, Project


def _locked_membership(*, project: Project, user: AbstractBaseUser) -> Membership:
    # Lock every admin row of the project first, in a fixed order, then find the member's row.
    list(
        Membership.objects.select_for_update()
        .filter(project=project, role=Membership.Role.ADMIN)
        .order_by("id")
        .values_list("id", flat=True)
    )
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None:
        raise InvalidInput(f"{user.get_username()} is not a member of this project.", field="user")
    return membership


def _is_last_admin(*, membership: Membership) -> bool:
    if membership.role != Membership.Role.ADMIN:
        return False
    others = Membership.objects.filter(project_id=membership.project_id, role=Membership.Role.ADMIN)
    return not others.exclude(pk=membership.pk).exists()


def membership_add(*, project: Project, username: str, role: str) -> Membership:
    """Add an existing user to the project by username. A member already in it is an error."""
    username = (username or "").strip()
    if not username:
        raise InvalidInput("Enter the username of the person to add.", field="username")
    if role not in Membership.Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Membership.Role.values)}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"No user is called '{username}'.", field="username")
    if Membership.objects.filter(project=project, user=user).exists():
        raise InvalidInput(f"{username} is a member already; change their role in the table.", field="username")
    return services.membership_set(project=project, user=user, role=role)


def membership_role_change(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Change a member's role. The last admin cannot become a labeler."""
    if role not in Membership.Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Membership.Role.values)}.", field="role")
    with transaction.atomic():
        membership = _locked_membership(project=project, user=user)
        if role != Membership.Role.ADMIN and _is_last_admin(membership=membership):
            raise Conflict("A project needs at least one admin: make someone else admin first.", field="role")
        return services.membership_set(project=project, user=user, role=role)


def membership_remove(*, project: Project, user: AbstractBaseUser) -> None:
    """Remove a member. Their annotations stay, their leases go; the last admin cannot be removed."""
    with transaction.atomic():
        membership = _locked_membership(project=project, user=user)
        if _is_last_admin(membership=membership):
            raise Conflict("A project needs at least one admin: make someone else admin first.", field="user")
        membership.delete()
        # A removed member can no longer submit, so their reservations would only block others.
        Lease.objects.filter(project=project, labeler=user).delete()
