"""Where a run's pipeline runs: beside the gpu worker (`local`) or as a job on a Ray cluster (`ray`).

The gpu worker's setting (FEEDBACKLOOP_EXECUTOR) is the default; a run's `executor` option
overrides it. On `ray`, `num_workers` above 1 trains data-parallel across the cluster's nodes: the
job's entrypoint is jobs/ray_launch.py, which reserves one placement-group bundle per rank (as few
nodes as hold them), runs the pipeline once in each with torch's launcher environment, and streams
every rank's output back; the ranks find each other over gloo (NCCL on GPUs), and rank 0 writes the
progress, the metrics and the model (training/pipelines/common.py).
docs/ray.md says what the cluster must share with the platform.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings

from annotation.errors import InvalidInput
from jobs.executors import Executor, LocalExecutor
from jobs.executors_ray import RayExecutor

from .models import TrainingRun


def executor_name(config: dict) -> str:
    """The executor a run with this config uses: its own choice, else the gpu worker's setting."""
    chosen = (config or {}).get("executor") or "default"
    return settings.PIPELINE_EXECUTOR if chosen == "default" else chosen


def placement_check(*, config: dict) -> None:
    """At create: a 400 naming the field for an executor this platform cannot use, or options it would ignore."""
    name = executor_name(config)
    if name == "ray" and not settings.RAY_ADDRESS:
        raise InvalidInput(
            "config.executor is ray, but this platform has no Ray cluster (RAY_ADDRESS is not set); "
            "choose local or default.", field="config.executor",
        )
    workers = int(config.get("num_workers", 1) or 1)
    if workers > 1 and name != "ray":
        raise InvalidInput(
            f"config.num_workers is {workers}, but several training workers run on the ray executor only "
            "(set config.executor to ray, or use num_gpus on the gpu worker).", field="config.num_workers",
        )
    share = settings.RAY_GPUS_PER_WORKER
    if name == "ray" and workers > 1 and share != int(share):
        raise InvalidInput(
            f"config.num_workers is {workers}, but each worker takes {share:g} of a GPU "
            "(FEEDBACKLOOP_RAY_GPUS_PER_WORKER): ranks of one run cannot share a GPU; use one worker, or "
            "whole GPUs per worker.", field="config.num_workers",
        )
    if name == "ray" and int(config.get("num_gpus", 1) or 1) > 1:
        raise InvalidInput(
            "config.num_gpus applies to the local executor; on ray, set config.num_workers (each takes "
            "FEEDBACKLOOP_RAY_GPUS_PER_WORKER GPUs).", field="config.num_gpus",
        )
    if name == "ray" and int(config.get("cpu_processes", 1) or 1) > 1:
        raise InvalidInput(
            "config.cpu_processes applies to the local executor; on ray, set config.num_workers "
            "(one process per worker, placed across the cluster's nodes).", field="config.cpu_processes",
        )


def run_executor(*, run: TrainingRun) -> Executor:
    """One worker: the entrypoint asks for a CPU (and its GPUs). Several: their bundles do, the driver nothing."""
    if executor_name(run.config) != "ray":
        return LocalExecutor()
    if int(run.config.get("num_workers", 1) or 1) > 1:
        return RayExecutor(address=settings.RAY_ADDRESS, run_id=run.pk, num_cpus=0, num_gpus=0)
    return RayExecutor(address=settings.RAY_ADDRESS, run_id=run.pk, num_cpus=1, num_gpus=settings.RAY_GPUS_PER_WORKER)


def ray_command(*, run: TrainingRun, config_path: Path) -> list[str]:
    """The Ray job's entrypoint: the pipeline, or jobs.ray_launch running one copy per worker across the nodes."""
    workers = int(run.config.get("num_workers", 1) or 1)
    pipeline = [sys.executable, "-m", f"training.pipelines.{run.kind}", "--config", str(config_path)]
    if workers > 1:
        return [sys.executable, "-m", "jobs.ray_launch", "--workers", str(workers), "--cpus", "1",
                "--gpus", format(settings.RAY_GPUS_PER_WORKER, "g"), "--", *pipeline]
    return pipeline
