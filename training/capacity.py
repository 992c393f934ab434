"""What the gpu workers can run: each says how many GPUs it has when it starts.

A run asking for more GPUs than any gpu worker has is refused when it is created, naming the
field, instead of waiting in the queue for a machine that does not exist. The record lives in the
shared cache (Redis in production); a worker removes its entry when it stops, and entries older
than KEEP are forgotten. Where no worker has said anything (the laptop's in-process cache, a
fresh deployment), nothing is refused here, and the worker itself refuses the run when it has
fewer GPUs than the run asks for (runner.pipeline_command).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

KEY = "training:gpu-capacity"
KEEP = timedelta(days=7)


GPU_IDS_ENV = "FEEDBACKLOOP_GPU_IDS"


def _id_list(text: str) -> list[str]:
    return [device.strip() for device in text.split(",") if device.strip() and device.strip() != "-1"]


def owned_gpu_ids() -> list[str] | None:
    """The GPUs this worker owns, from FEEDBACKLOOP_GPU_IDS ("0,1"; empty: none), or None when unset.

    Two gpu workers on one 8-GPU machine each own their half (FEEDBACKLOOP_GPU_IDS=0,1,2,3 and
    4,5,6,7); the pipelines they start see only those (services.pipeline_env sets
    CUDA_VISIBLE_DEVICES), and the worker's capacity counts only those.
    """
    owned = os.environ.get(GPU_IDS_ENV)
    return None if owned is None else _id_list(owned)


def visible_gpu_count() -> int:
    """GPUs this process can hand a pipeline, counted without torch (a worker never initialises CUDA)."""
    owned = owned_gpu_ids()
    if owned is not None:
        return len(owned)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len(_id_list(visible))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def _fresh(entries: dict, now: datetime) -> dict:
    return {
        worker: (gpus, seen) for worker, (gpus, seen) in entries.items()
        if now - datetime.fromisoformat(seen) < KEEP
    }


def gpu_capacity_record(*, worker: str, gpus: int) -> None:
    """A gpu worker's count, as it starts (two starting at once may race; the next start repairs it)."""
    now = timezone.now()
    entries = _fresh(cache.get(KEY) or {}, now)
    entries[worker] = (gpus, now.isoformat())
    cache.set(KEY, entries, timeout=None)


def gpu_capacity_forget(*, worker: str) -> None:
    entries = cache.get(KEY) or {}
    if entries.pop(worker, None) is not None:
        cache.set(KEY, entries, timeout=None)


def gpu_capacity_max() -> int | None:
    """The most GPUs any recent gpu worker has, or None when none has said."""
    entries = _fresh(cache.get(KEY) or {}, timezone.now())
    return max((gpus for gpus, _ in entries.values()), default=None)
