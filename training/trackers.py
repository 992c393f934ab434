"""A run's experiment-tracker files (its config's report_to): what the run page lists, and the folder to download."""

from __future__ import annotations

from pathlib import Path

from .archives import folder_files
from .models import TrainingRun
from .pipelines.common import TRACKERS
from .runner import run_dir


def tracker_folder(run: TrainingRun, name: str) -> Path | None:
    """The run's trackers/<name>/ folder if the name is a tracker and the folder holds files, else None."""
    if name not in TRACKERS or name == "none":
        return None
    folder = run_dir(run) / "trackers" / name
    return folder if folder.is_dir() and any(True for _ in folder_files(folder)) else None


def tracker_listing(run: TrainingRun) -> list[dict]:
    """[{"name", "files", "bytes"}] for each tracker folder of the run that holds files."""
    out = []
    for name in TRACKERS:
        folder = tracker_folder(run, name)
        if folder is None:
            continue
        sizes = [stat.st_size for _, stat in folder_files(folder)]
        out.append({"name": name, "files": len(sizes), "bytes": sum(sizes)})
    return out
