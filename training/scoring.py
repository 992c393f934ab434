"""Reward-model scoring as a job step: run training.pipelines.score on a JSONL of chats, read the scores.

Active sampling (loop/active_sampling.py) and the reward-model check (training/staleness/) both
score through here: the same command, started and followed by the job executor
(jobs/executors.py), with a time limit of its own.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from jobs.executors import pipeline_execute
from jobs.stream import Batch

from . import services

SCORING_TIMEOUT_SECONDS = getattr(settings, "ACTIVE_SAMPLING_TIME_LIMIT_SECONDS", 3600)
STALE_RUNNING = timedelta(minutes=10)  # a queued or running scoring this quiet is lost: it may start again
_RUNNING = "running"


def score_command(*, model_dir: str, input_file: Path, output_file: Path) -> list[str]:
    return [
        sys.executable, "-m", "training.pipelines.score",
        "--model", model_dir, "--input", str(input_file), "--output", str(output_file),
    ]


def scores_read(*, path: Path) -> dict[int, float]:
    scores: dict[int, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                scores[int(row["id"])] = float(row["score"])
    return scores


def score_pipeline_run(*, command: list[str], on_progress: Callable[[int], None]) -> tuple[int, str]:
    """Run the scoring pipeline and follow it; returns (exit code, error or "").

    on_progress gets the rows scored so far at each flush. Past SCORING_TIMEOUT_SECONDS the
    pipeline is stopped as a cancelled job would be.
    """
    deadline = time.monotonic() + SCORING_TIMEOUT_SECONDS

    def flush(batch: Batch) -> str:
        if time.monotonic() > deadline:
            return "timed out"
        if batch.step is not None:
            on_progress(batch.step)
        batch.step, batch.lines, batch.points = None, [], []
        return _RUNNING

    code, stop_reason, state = pipeline_execute(
        command=command, env=services.pipeline_env(), flush=flush, running=_RUNNING,
    )
    if stop_reason:
        return code or 1, f"scoring took longer than {SCORING_TIMEOUT_SECONDS} s"
    error = state.error_message
    if code != 0 and not error:
        error = f"exit status {code}\n" + "\n".join(state.recent)
    return code, error
