"""Writes for the simulation: the simulated users, their API tokens and their memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotation import services as annotation_services
from annotation.errors import InvalidInput
from annotation.models import Membership, Project

from .labelers import Account

LABELER_PREFIX = "sim-labeler"
ADMIN_USERNAME = "sim-admin"
MAX_LABELERS = 512


def sim_user_ensure(*, username: str) -> tuple[AbstractBaseUser, str]:
    """The user (created with an unusable password if missing) and its API token."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def sim_admin_ensure(*, username: str = ADMIN_USERNAME) -> Account:
    """The account the full loop uses to create projects, import prompts and start runs over the API."""
    user, token = sim_user_ensure(username=username)
    annotation_services.project_creator_set(user=user)
    return Account(username=username, token=token)


@transaction.atomic
def sim_labelers_ensure(*, project: Project, count: int, prefix: str = LABELER_PREFIX) -> list[Account]:
    """`count` simulated labelers, members of `project` (an existing admin keeps its role)."""
    if not 1 <= count <= MAX_LABELERS:
        raise InvalidInput(f"labelers must be between 1 and {MAX_LABELERS}.", field="labelers")
    accounts = []
    for i in range(count):
        user, token = sim_user_ensure(username=f"{prefix}-{i}")
        if not Membership.objects.filter(project=project, user=user).exists():
            annotation_services.membership_set(project=project, user=user, role=Membership.Role.LABELER)
        accounts.append(Account(username=user.get_username(), token=token))
    return accounts
