"""FeedbackLoop's Python client: `Client(url, token=...)` over the platform's JSON API (see /api/schema/)."""

from .client import ApiError, Client
from .types import Annotation, EvaluationStart, GenerationJob, Model, Project, RewardCheck, Task, TrainingRun

__all__ = [
    "Annotation", "ApiError", "Client", "EvaluationStart", "GenerationJob", "Model", "Project", "RewardCheck", "Task",
    "TrainingRun",
]
