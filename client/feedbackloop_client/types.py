"""The shapes the API answers with, as TypedDicts named after the OpenAPI schema's components.

Only the fields a client commonly reads are listed; the dicts carry every field the server sends.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Project(TypedDict, total=False):
    id: int
    name: str
    slug: str
    guidelines: str
    overlap: int
    lease_seconds: int
    dynamic_overlap: bool  # a disagreed comparison gets one more label, up to max_overlap
    max_overlap: int
    agreement_threshold: float
    role: str | None
    progress: dict[str, Any]


class Task(TypedDict, total=False):
    id: int
    project: int
    kind: str  # "demonstration" or "comparison"
    messages: list[dict[str, str]]
    responses: list[dict[str, Any]]  # [{"id": ..., "text": ...}] in display order
    lease_expires_at: str | None


class Annotation(TypedDict, total=False):
    id: int
    task: int
    client_id: str
    kind: str
    text: str
    ranking: list[list[int]]
    strength: str
    created_at: str


class TrainingRun(TypedDict, total=False):
    id: int
    kind: str  # sft, reward, dpo, rlhf
    project: int
    status: str  # queued, running, succeeded, failed, cancelling, cancelled
    step: int
    total_steps: int
    progress: float
    base_model: int
    reward_model: int | None
    config: dict[str, Any]
    error: str
    output_model: int | None
    metrics: dict[str, list[list[float]]]
    log_tail: str


class Model(TypedDict, total=False):
    id: int
    name: str
    kind: str  # base, sft, reward, policy
    path: str
    source: str
    parent: int | None
    project: int | None
    metrics: dict[str, Any]
    reward_checks: list[RewardCheck]  # a reward model's checks in the projects where you train


class RewardCheck(TypedDict, total=False):
    """Is a reward model still right? Its agreement with the newest labels on the current policy's samples."""

    reward_model: int
    project: int
    status: str  # queued, running, succeeded, failed
    policy: int | None
    agreement: float | None
    eval_accuracy: float | None
    labels: int
    pairs: int
    computed_at: str | None
    stale: bool
    verdict: str  # ok, stale, too few labels, not computed
    hint: str


class GenerationJob(TypedDict, total=False):
    id: int
    project: int
    status: str
    step: int
    total_steps: int
    tasks_created: int
    error: str


class EvaluationStart(TypedDict, total=False):
    id: int
    project: int
    model_a: int
    model_b: int
    status: str
    results: dict[str, Any]
