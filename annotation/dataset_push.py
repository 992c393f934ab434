"""A project's dataset export pushed to the Hugging Face Hub (hub_push), as the same directory the download holds."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser

from .export_filters import ExportFilters
from .hf_dataset import dataset_check, dataset_dir_write
from .hub_push import hub_push_create, hub_push_run, private_check, repo_id_check, token_check
from .models import HubPush, Project

DATASET_PUSH_TASK = "annotation.tasks.hub_push_dataset"


def dataset_push_start(
    *, project: Project, fmt: str, filters: ExportFilters, license: str | None, repo_id, token, private,
    created_by: AbstractBaseUser | None,
) -> HubPush:
    """Check everything (format, filters, license, repo id, token) before anything is stored, then queue the push."""
    repo_id, token, private = repo_id_check(repo_id), token_check(token), private_check(private)  # cheap ones first
    license = dataset_check(project=project, fmt=fmt, filters=filters, license=license)
    return hub_push_create(
        kind=HubPush.Kind.DATASET, project=project, repo_id=repo_id, token=token, private=private,
        created_by=created_by, fmt=fmt, filters=filters.as_dict(), license=license,
        task_name=DATASET_PUSH_TASK,
    )


def dataset_push_run(*, push_id: int) -> str:
    return hub_push_run(push_id=push_id, folder_for=_dataset_folder)


def _dataset_folder(push: HubPush, scratch: Path) -> tuple[Path, int]:
    summary = dataset_dir_write(
        project=push.project, fmt=push.format, filters=ExportFilters.from_mapping(push.filters),
        license=push.license, folder=scratch,
    )
    return scratch, summary.rows
