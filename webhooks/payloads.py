"""The `data` of each event type: ids and the fields a receiver acts on, never a secret or a password.

Built from rows the caller has in hand, so emitting costs no query. Labelers appear by user id only.
"""

from __future__ import annotations


def _when(value) -> str | None:
    return value.isoformat() if value is not None else None


def annotation_data(*, annotation, task) -> dict:
    data = {
        "id": annotation.pk,
        "project_id": task.project_id,
        "task_id": task.pk,
        "prompt_id": task.prompt_id,
        "kind": annotation.kind,
        "labeler_id": annotation.labeler_id,
        "client_id": str(annotation.client_id),
        "time_spent_ms": annotation.time_spent_ms,
        "lease_expired": annotation.lease_expired,
        "created_at": _when(annotation.created_at),
    }
    if annotation.kind == "demonstration":
        data["text"] = annotation.text
        data["response_id"] = annotation.response_id
    elif annotation.kind == "comparison":
        data.update(ranking=annotation.ranking, strength=annotation.strength, all_bad=annotation.all_bad)
    else:
        data["reason"] = annotation.reason
    return data


def task_data(*, task) -> dict:
    return {
        "id": task.pk,
        "project_id": task.project_id,
        "prompt_id": task.prompt_id,
        "kind": task.kind,
        "required": task.required,
        "done": task.done,
        "status": task.status,
        "completed_at": _when(task.updated_at),
    }


def project_data(*, project, tasks: int) -> dict:
    return {"id": project.pk, "name": project.name, "slug": project.slug, "tasks": tasks}


def run_data(*, run) -> dict:
    return {
        "id": run.pk,
        "project_id": run.project_id,
        "kind": run.kind,
        "status": run.status,
        "base_model_id": run.base_model_id,
        "reward_model_id": run.reward_model_id,
        "snapshot_id": run.snapshot_id,
        "step": run.step,
        "total_steps": run.total_steps,
        "error": run.error,
        "created_at": _when(run.created_at),
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
    }


def model_data(*, model) -> dict:
    return {
        "id": model.pk,
        "project_id": model.project_id,
        "name": model.name,
        "kind": model.kind,
        "source": model.source,
        "parent_id": model.parent_id,
        "run_id": model.produced_by_id,
        "metrics": model.metrics,
        "created_at": _when(model.created_at),
    }


def generation_data(*, job) -> dict:
    return {
        "id": job.pk,
        "project_id": job.project_id,
        "model_version_id": job.model_version_id,
        "model_version_b_id": job.model_version_b_id,
        "evaluation_id": job.evaluation_id,
        "status": job.status,
        "k": job.k,
        "prompts": len(job.prompt_ids),
        "tasks_created": job.tasks_created,
        "responses_created": job.responses_created,
        "prompts_skipped": job.prompts_skipped,
        "finished_at": _when(job.finished_at),
    }
