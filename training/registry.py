"""The model registry's rules: which models a project may use, what a user may register, where files are.

Tenancy. A ModelVersion belongs to one project or is global (a base model that a superuser or
the operator registered). A project's runs, generation jobs, evaluations and active sampling take
its own models and the global ones only: `model_for_project` is the one lookup for ids that come
from outside, and `model_check` the one guard the services apply to whatever they are handed.
A model of another project answers exactly like a model that does not exist.

Registering by path. Users register a hub id, or an absolute directory under one of the operator's
model roots (FEEDBACKLOOP_MODEL_ROOTS), checked after resolving symlinks and `..`, and never inside
the platform's storage, where every project's run outputs live: the platform registers those
itself. Every refused path gets the same answer whether or not it exists, so the registry is no
oracle of the server's filesystem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.models import Project

from . import webhook_events
from .models import ModelVersion
from .snapshots import storage_path

Source = ModelVersion.Source
# owner/name or name, as the hub spells them; never `.`/`..` segments, never a path of three parts.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


# Tenancy -----------------------------------------------------------------------------------------


def models_for_project(*, project: Project) -> QuerySet[ModelVersion]:
    """The models a project's jobs may use: its own and the global ones."""
    return ModelVersion.objects.filter(Q(project__isnull=True) | Q(project=project))


def model_for_project(*, project: Project, model_id) -> ModelVersion | None:
    """The model with this id if the project may use it; None for another project's model or no model."""
    model_id = as_id(model_id)
    if model_id is None:
        return None
    return models_for_project(project=project).filter(pk=model_id).first()


def model_unusable_message(*, field: str, value) -> str:
    return f"{field}: no model {value!r} that this project may use (its own models and the global ones)."


def model_check(model, *, project: Project, field: str) -> ModelVersion:
    """The services' guard: `model` is a ModelVersion of this project or a global one, else a 400 on `field`."""
    if not isinstance(model, ModelVersion) or model.project_id not in (None, project.pk):
        shown = model.name if isinstance(model, ModelVersion) else model
        raise InvalidInput(model_unusable_message(field=field, value=shown), field=field)
    return model


# Where the files are -------------------------------------------------------------------------------


def model_files_check(model: ModelVersion, *, field: str) -> None:
    """A 400 on `field` when a model's directory is gone: said when the job is asked for, not on the worker.

    Storage and local models must be a directory with a config.json. A hub id is read from the
    worker's own Hugging Face cache, which this process cannot see, so the worker checks it.
    """
    if model.source == Source.HUB:
        return
    folder = Path(model_location(model))
    if not (folder / "config.json").is_file():
        raise InvalidInput(
            f"{field}: the files of model {model.name} are missing (no model directory at {folder}); "
            "it was deleted or moved, or the storage is not mounted here.",
            field=field,
        )



def model_location(model: ModelVersion) -> str:
    """What a pipeline passes to from_pretrained: an absolute directory, or a hub id read from the cache."""
    if model.source == Source.STORAGE and not os.path.isabs(model.path):
        return str(storage_path(model.path))
    return model.path


# Registering ----------------------------------------------------------------------------------------


def model_roots() -> list[Path]:
    return [Path(root) for root in settings.MODEL_ROOTS if str(root).strip()]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _registrable_dir(path: str) -> Path | None:
    """The resolved directory if `path` may be registered; None for anything else, whatever the reason."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return None
    roots = model_roots()
    # First by the text alone (nothing outside the roots is ever looked at), then for real.
    lexical = Path(os.path.normpath(candidate))
    if not any(_inside(lexical, Path(os.path.normpath(root))) for root in roots):
        return None
    try:
        resolved = candidate.resolve(strict=True)
        real_roots = [root.resolve() for root in roots]
        storage = Path(settings.STORAGE_ROOT).resolve()
        if not resolved.is_dir():
            return None
    except (OSError, RuntimeError, ValueError):
        return None
    if _inside(resolved, storage) or not any(_inside(resolved, root) for root in real_roots):
        return None
    return resolved


def _platform_names() -> set[str]:
    """Top-level names of the platform's own folder: pipelines run there, so a hub id must not name one."""
    try:
        return {entry.name.lower() for entry in Path(settings.BASE_DIR).iterdir()}
    except OSError:
        return set()


def _refused(path: str) -> InvalidInput:
    roots = ", ".join(str(root) for root in model_roots()) or "none configured: FEEDBACKLOOP_MODEL_ROOTS"
    return InvalidInput(
        f"No model directory or hub id {path!r} that may be registered. Give a hub id (owner/name) or an "
        f"absolute directory under a model root ({roots}). Run outputs are registered by the platform.",
        field="path",
    )


def model_path_resolve(path: str) -> tuple[str, str]:
    """(source, path to store) for a path a user asks to register; the same 400 for every refusal."""
    path = (path or "").strip()
    if not path:
        raise InvalidInput("path must be a hub id or an absolute directory under a model root.", field="path")
    if len(path) > 500:
        raise InvalidInput("path is longer than 500 characters.", field="path")
    if HUB_ID.fullmatch(path):
        if path.split("/")[0].lower() in _platform_names():
            raise _refused(path)
        return Source.HUB, path
    directory = _registrable_dir(path)
    if directory is None:
        raise _refused(path)
    return Source.LOCAL, str(directory)


def model_register(
    *, name: str, kind: str, path: str, project: Project | None, registered_by: AbstractBaseUser | None,
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """Register a hub id or a directory as a model of `project`, or as a global model (superusers only).

    The caller has checked that `registered_by` may train in `project`; None is the operator (a
    setting or a management command). Nothing is downloaded or read beyond the directory's existence.
    """
    if project is None and registered_by is not None and not registered_by.is_superuser:
        raise PermissionDenied("Only superusers register global models; name a project you train in.")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A model needs a name.", field="name")
    if len(name) > 200:
        raise InvalidInput("name is longer than 200 characters.", field="name")
    if kind not in ModelVersion.Kind.values:
        raise InvalidInput(f"kind must be one of {', '.join(ModelVersion.Kind.values)}.", field="kind")
    if parent is not None:
        if project is None and parent.project_id is not None:
            raise InvalidInput("A global model's parent must be global too.", field="parent")
        if project is not None:
            model_check(parent, project=project, field="parent")
    source, stored = model_path_resolve(path)
    if ModelVersion.objects.filter(name=name).exists():
        raise InvalidInput(f"A model named '{name}' exists already.", field="name")
    model = ModelVersion.objects.create(
        name=name, kind=kind, path=stored, source=source, parent=parent, project=project
    )
    webhook_events.model_registered_emit(model=model)  # a project's model only; after commit
    return model


def model_register_setting(*, name: str, path: str) -> ModelVersion:
    """Register the operator's BASE_MODEL (a hub id or a local directory) as a global base model.

    The operator's own setting is trusted: it needs no model root, but it is still typed once.
    """
    source = Source.LOCAL if os.path.isabs(path) else Source.HUB
    if source == Source.LOCAL and not os.path.isdir(path):
        raise InvalidInput(f"BASE_MODEL: no directory at {path}.", field="path")
    return ModelVersion.objects.create(name=name, kind=ModelVersion.Kind.BASE, path=path, source=source)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tokenizer_config.json")


def model_dir_check(path: str) -> dict:
    """Can this directory start a run? {"architecture", "parameters"} if so, else a 400 on `path` saying why.

    A config.json, a tokenizer, and an architecture that this transformers builds as a causal
    language model: read offline from the config alone (the model is built on the meta device, see
    training/pipelines/presets.py), so the check costs no memory whatever the model's size.
    """
    from training.pipelines.presets import PresetError, model_shape

    folder = Path(path)
    if not folder.is_absolute() or not folder.is_dir():
        raise InvalidInput(f"path: no model directory at {path} (give an absolute path).", field="path")
    if not (folder / "config.json").is_file():
        raise InvalidInput(f"path: {folder} has no config.json; save the model with save_pretrained.", field="path")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InvalidInput(f"path: {folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                           "save the tokenizer beside the model with save_pretrained.", field="path")
    try:
        shape = model_shape(str(folder))
    except PresetError as exc:
        raise InvalidInput(f"path: {exc.message}", field="path") from None
    return {"architecture": shape.architecture, "parameters": shape.parameters}


def base_model_register_dir(*, path: str, name: str) -> ModelVersion:
    """Register a local Hugging Face model directory as a global base model (the operator's command).

    The operator is trusted like the BASE_MODEL setting: no model root is needed, but the directory
    is checked (model_dir_check) and stored resolved, so a later move of a symlink changes nothing.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A model needs a name.", field="name")
    if len(name) > 200:
        raise InvalidInput("name is longer than 200 characters.", field="name")
    folder = Path(path).expanduser()
    folder = folder.resolve() if folder.is_absolute() or folder.exists() else folder
    model_dir_check(str(folder))
    if ModelVersion.objects.filter(name=name).exists():
        raise InvalidInput(f"A model named '{name}' exists already.", field="name")
    return ModelVersion.objects.create(
        name=name, kind=ModelVersion.Kind.BASE, path=str(folder), source=Source.LOCAL, project=None,
    )


def global_model_or_none(model_id) -> ModelVersion | None:
    """A global model by an id from outside (a global model's parent must be global too)."""
    model_id = as_id(model_id)
    return ModelVersion.objects.filter(pk=model_id, project__isnull=True).first() if model_id else None
