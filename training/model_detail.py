"""One model's page: its card, metrics with the key one first, lineage, the runs that used it, download.

The card is written from what the platform knows (base model, the run and its dataset snapshot with
its sha256, config, metrics, lineage), as a README.md with YAML metadata, the way model hubs show
models. The download is a tar of the model's directory, streamed file by file (weights can be GBs),
with that card as README.md when the directory has none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from django.db.models import Q

from . import archives
from .models import Evaluation, GenerationJob, ModelVersion, TrainingRun
from .registry import model_location

# The metric that says most about a model of each kind, first on its page (the first one present wins).
KEY_METRICS = {
    ModelVersion.Kind.REWARD: ("eval_accuracy", "accuracy", "eval_loss", "loss"),
    ModelVersion.Kind.SFT: ("eval_loss", "train_loss", "loss", "mean_token_accuracy"),
    ModelVersion.Kind.POLICY: ("reward", "rewards/accuracies", "kl", "train_loss", "loss"),
    ModelVersion.Kind.BASE: (),
}


def metrics_key_first(model: ModelVersion) -> list[tuple[str, float, bool]]:
    """(name, value, is the key metric) with the kind's key metric first, then the rest by name."""
    metrics = {k: v for k, v in (model.metrics or {}).items() if isinstance(v, (int, float))}
    key = next((name for name in KEY_METRICS.get(model.kind, ()) if name in metrics), None)
    rows = [(name, metrics[name], name == key) for name in sorted(metrics) if name != key]
    return ([(key, metrics[key], True)] if key else []) + rows


def lineage(model: ModelVersion) -> list[ModelVersion]:
    """The model's ancestors, oldest first, ending with the model."""
    chain, seen, current = [], set(), model
    while current is not None and current.pk not in seen:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return list(reversed(chain))


def uses(model: ModelVersion) -> dict:
    return {
        "runs": list(
            TrainingRun.objects.filter(Q(base_model=model) | Q(reward_model=model))
            .select_related("project").order_by("-created_at")[:50]
        ),
        "generation_jobs": list(
            GenerationJob.objects.filter(Q(model_version=model) | Q(model_version_b=model)).order_by("-created_at")[:20]
        ),
        "evaluations": list(
            Evaluation.objects.filter(Q(model_a=model) | Q(model_b=model)).order_by("-created_at")[:20]
        ),
        "children": list(model.children.order_by("name")),
    }


def _yaml_value(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and lists are valid YAML


def model_card(model: ModelVersion) -> str:
    """README.md for the model: YAML metadata, then what it is, how it was made, and its intended use."""
    run = model.produced_by
    snapshot = run.snapshot if run is not None else None
    chain = lineage(model)
    meta = {
        "model_name": model.name,
        "model_kind": model.kind,
        "base_model": chain[0].path if len(chain) > 1 else None,
        "parent": model.parent.name if model.parent_id else None,
        "project": model.project.slug if model.project_id else None,
        "training_run": run.pk if run else None,
        "training_kind": run.kind if run else None,
        "dataset_snapshot": snapshot.pk if snapshot else None,
        "dataset_format": snapshot.format if snapshot else None,
        "dataset_sha256": snapshot.sha256 if snapshot else None,
        "dataset_rows": snapshot.row_count if snapshot else None,
        "library_name": "transformers",
        "tags": ["feedbackloop", model.kind] + (["trl", run.kind] if run else []),
    }
    lines = ["---"] + [f"{key}: {_yaml_value(value)}" for key, value in meta.items() if value is not None]
    if model.metrics:
        lines.append("metrics:")
        lines += [f"  {name}: {_yaml_value(value)}" for name, value, _ in metrics_key_first(model)]
    if run and run.config:
        lines.append("training_config:")
        lines += [f"  {name}: {_yaml_value(value)}" for name, value in sorted(run.config.items())]
    lines.append("---")
    lines += ["", f"# {model.name}", "", f"A {model.get_kind_display()} model registered in FeedbackLoop."]
    if len(chain) > 1:
        lines += ["", "## Lineage", ""] + [f"- {m.name} ({m.get_kind_display()})" for m in chain]
    if run:
        lines += ["", "## Training", "", f"Run #{run.pk} ({run.get_kind_display()}) on "
                  + (f"snapshot #{snapshot.pk}: {snapshot.row_count} {snapshot.format} rows, sha256 `{snapshot.sha256}`."
                     if snapshot else "no recorded snapshot.")]
    lines += ["", "## Intended use", "", _INTENDED_USE.get(model.kind, "Research and evaluation.")]
    return "\n".join(lines) + "\n"


_INTENDED_USE = {
    ModelVersion.Kind.BASE: "A starting point for supervised fine-tuning in this project.",
    ModelVersion.Kind.SFT: "A policy fine-tuned on the project's demonstrations: the start of reward modelling and RLHF, "
                           "and a writer of candidate responses for comparison.",
    ModelVersion.Kind.REWARD: "Scores responses to this project's prompts for RLHF and active sampling. Its scores are "
                              "only as good as the labels it learned from; check its agreement with new labels before "
                              "trusting it on a new policy's samples.",
    ModelVersion.Kind.POLICY: "A policy optimised against the project's preferences. Evaluate it against its parent on "
                              "held-out prompts before use.",
}


def card_write(model: ModelVersion) -> Path | None:
    """Write the model's card as README.md into its directory (replacing a library's generic one); None without one.

    A card that cannot be written (a read-only or vanished directory) is not the run's failure: the
    page and the download still build it from the database.
    """
    folder = model_directory(model)
    if folder is None:
        return None
    path = folder / "README.md"
    try:
        partial = path.with_name(".README.md.partial")
        partial.write_text(model_card(model), encoding="utf-8")
        partial.replace(path)
    except OSError:
        return None
    return path


def model_directory(model: ModelVersion) -> Path | None:
    """The model's directory on this machine, or None (a hub id, or files that are gone)."""
    if model.source == ModelVersion.Source.HUB:
        return None
    folder = Path(model_location(model))
    return folder if folder.is_dir() else None


def archive_chunks(model: ModelVersion, folder: Path) -> Iterator[bytes]:
    """An uncompressed tar of the folder under <model name>/, streamed, with the card as README.md if it has none."""
    extra = {} if (folder / "README.md").is_file() else {"README.md": model_card(model).encode("utf-8")}
    return archives.tar_chunks(folder, root=model.name, extra=extra)
