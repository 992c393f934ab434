"""A registered model's directory pushed to the Hugging Face Hub, with its card as README.md (annotation.hub_push).

Only those who may train in the model's project (its admins and engineers) may push it; a global model,
only a superuser. A model without files here (a hub id, or a directory that is gone) has nothing to push.

The Hub checks a card's metadata before it takes a commit: `metrics` must be a list of metric ids and
`base_model` a model on the Hub. The card the platform writes keeps its metrics as a mapping and may
name a local base model, so the pushed card carries those two as `feedbackloop_metrics` and
`feedbackloop_base_model` instead (the rest, and the prose, as written). The weights are not copied:
the upload reads a scratch folder of links to the model's files, beside that card.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from annotation.archives import folder_files
from annotation.errors import InvalidInput
from annotation.hub_push import hub_push_create, hub_push_run
from annotation.models import HubPush
from annotation.roles import Action, project_access

from . import model_detail
from .models import ModelVersion

MODEL_PUSH_TASK = "training.tasks.model_push"


def model_push_check(*, model: ModelVersion, user: AbstractBaseUser) -> Path:
    """The model's directory if `user` may push it; PermissionDenied or InvalidInput (naming `model`) if not."""
    if model.project_id is None:
        if not user.is_superuser:
            raise PermissionDenied("Only a superuser may push a global model.")
    else:
        project_access(user=user, project_id=model.project_id, action=Action.TRAIN)
    folder = model_detail.model_directory(model)
    if folder is None:
        raise InvalidInput("This model has no files here to push (a hub id, or its directory is gone).", field="model")
    return folder


def model_push_start(*, model: ModelVersion, user: AbstractBaseUser, repo_id, token, private) -> HubPush:
    model_push_check(model=model, user=user)
    return hub_push_create(
        kind=HubPush.Kind.MODEL, project=model.project, model_version=model, repo_id=repo_id, token=token,
        private=private, created_by=user, task_name=MODEL_PUSH_TASK,
    )


def model_push_run(*, push_id: int) -> str:
    return hub_push_run(push_id=push_id, folder_for=_model_folder)


def _model_folder(push: HubPush, scratch: Path) -> tuple[Path, None]:
    """Links to the model's files (the weights are not copied) and the card the Hub accepts, in `scratch`."""
    model = ModelVersion.objects.select_related("project", "parent", "produced_by__snapshot").get(
        pk=push.model_version_id
    )
    folder = model_detail.model_directory(model)
    if folder is None:
        raise InvalidInput("The model's directory is gone: there is nothing to push.", field="model")
    model_detail.card_write(model)
    for path, _ in folder_files(folder):
        relative = path.relative_to(folder)
        if relative.as_posix() == "README.md":
            continue
        (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, scratch / relative)
    (scratch / "README.md").write_text(hub_model_card(model), encoding="utf-8")
    return scratch, None


def hub_model_card(model: ModelVersion) -> str:
    """The model's card with the metadata the Hub would refuse renamed (see the module's docstring)."""
    from huggingface_hub import ModelCard, ModelCardData

    card = ModelCard(model_detail.model_card(model))
    data = card.data.to_dict()
    if "metrics" in data:
        data["feedbackloop_metrics"] = data.pop("metrics")
    root = model_detail.lineage(model)[0]
    if "base_model" in data and root.source != ModelVersion.Source.HUB:
        data["feedbackloop_base_model"] = data.pop("base_model")
    card.data = ModelCardData(**data)
    return str(card)


def model_pushes(*, model: ModelVersion, limit: int = 10) -> QuerySet[HubPush]:
    return HubPush.objects.filter(model_version=model, kind=HubPush.Kind.MODEL).order_by("-created_at", "-id")[:limit]
