"""An export as a Hugging Face dataset directory: parquet shards under data/ and a dataset card, README.md.

The rows are the export's own (exporters.export_lines, with the same filters), parsed a batch at a
time and written with pyarrow's ParquetWriter, one row group per batch, so memory does not grow with
the project. A shard holds up to SHARD_ROWS rows; shards are written under temporary names and renamed
`data/train-00000-of-0000N.parquet` once N is known. The card (huggingface_hub's DatasetCard) carries
the metadata the Hub and `datasets.load_dataset` read (license, task categories, `configs:` pointing
at the shards, `dataset_info` with the features and the row count) and prose: the schema, the counts,
who labelled (pseudonyms or the external source, never a name or an email) and the provenance (the
project, the export time, the filters, each shard's sha256).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone
from huggingface_hub import DatasetCard, DatasetCardData

from .errors import InvalidInput
from .export_filters import ExportFilters
from .export_scope import export_scope, kept_annotations, labeler_pseudonym, sft_rows
from .exporters import export_count, export_lines
from .models import Annotation, Project

DATASET_FORMATS = ("sft", "preference")
DEFAULT_LICENSE = "other"
LICENSE_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,63}$")
SHARD_ROWS = 250_000
BATCH_ROWS = 1_000

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_CHAT = pa.list_(_MESSAGE)


def dataset_schema(*, fmt: str, filters: ExportFilters) -> pa.Schema:
    """The columns of each format: TRL's conversational rows (lists of {role, content} turns)."""
    if fmt == "sft":
        return pa.schema([("messages", _CHAT)])
    score = "weight" if filters.consensus == "weight" else "margin"
    return pa.schema([("prompt", _CHAT), ("chosen", _CHAT), ("rejected", _CHAT), (score, pa.float64())])


def license_check(value: str | None) -> str:
    """A license identifier as the Hub's cards write it (`mit`, `cc-by-4.0`, `other`); empty gives the default."""
    value = (value or "").strip().lower() or DEFAULT_LICENSE
    if not LICENSE_RE.match(value):
        raise InvalidInput(
            "license must be a license identifier such as mit, apache-2.0, cc-by-4.0 or other "
            "(lower-case letters, digits, dots and dashes, at most 64).", field="license",
        )
    return value


def format_check(fmt: str) -> str:
    if fmt not in DATASET_FORMATS:
        raise InvalidInput(
            f"A dataset directory holds a training format: format must be one of {', '.join(DATASET_FORMATS)}.",
            field="format",
        )
    return fmt


@dataclass
class DatasetSummary:
    """What was written: rows, shards (name, rows, bytes, sha256), and the card's text."""

    rows: int = 0
    shards: list[dict] = field(default_factory=list)
    card: str = ""


def dataset_check(*, project: Project, fmt: str, filters: ExportFilters | None, license: str | None) -> str:
    """Check format, filters and license before anything is written (a bad one is InvalidInput naming it),
    and that the export keeps a row: `datasets` cannot load a dataset without one. Counts ids only."""
    format_check(fmt)
    license = license_check(license)
    if not export_count(project=project, fmt=fmt, filters=filters):
        raise InvalidInput(
            f"The {fmt} export of this project keeps no rows{' with these filters' if filters else ''}: "
            "a dataset needs at least one.", field="format",
        )
    return license


def dataset_dir_write(
    *, project: Project, fmt: str, filters: ExportFilters | None, license: str | None, folder: Path,
) -> DatasetSummary:
    """Write the dataset directory into `folder` (data/*.parquet and README.md) and say what it holds."""
    filters = filters or ExportFilters()
    format_check(fmt)
    license = license_check(license)
    exported_at = timezone.now()
    schema = dataset_schema(fmt=fmt, filters=filters)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    summary = DatasetSummary()
    parts: list[tuple[Path, int]] = []
    writer: pq.ParquetWriter | None = None
    in_shard = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal writer, in_shard
        if writer is None:
            parts.append((data / f".part-{len(parts):05d}.parquet", 0))
            writer = pq.ParquetWriter(parts[-1][0], schema)
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        in_shard += len(batch)
        parts[-1] = (parts[-1][0], in_shard)
        batch.clear()
        if in_shard >= SHARD_ROWS:
            writer.close()
            writer, in_shard = None, 0

    for line in export_lines(project=project, fmt=fmt, filters=filters):
        batch.append(json.loads(line))
        if len(batch) == BATCH_ROWS or in_shard + len(batch) >= SHARD_ROWS:
            flush()
    if batch or not parts:
        flush()
    if writer is not None:
        writer.close()
    for index, (part, rows) in enumerate(parts):
        final = data / f"train-{index:05d}-of-{len(parts):05d}.parquet"
        part.rename(final)
        summary.rows += rows
        summary.shards.append({
            "path": f"data/{final.name}", "rows": rows, "bytes": final.stat().st_size, "sha256": _sha256(final),
        })
    card = dataset_card(
        project=project, fmt=fmt, filters=filters, license=license, schema=schema, summary=summary,
        labelers=_labeler_counts(project=project, fmt=fmt, filters=filters), exported_at=exported_at,
    )
    card.save(folder / "README.md")
    summary.card = str(card)
    return summary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _labeler_counts(*, project: Project, fmt: str, filters: ExportFilters) -> list[tuple[str, int]]:
    """Annotations kept per labeler (a pseudonym) or external source, most first: who made the rows."""
    scope = export_scope(project=project, fmt=fmt, filters=filters)
    where = sft_rows() if fmt == "sft" else Q(kind=Annotation.Kind.COMPARISON)
    rows = (
        kept_annotations(project=project, scope=scope, where=where)
        .order_by().values_list("labeler_id", "external_source").annotate(n=Count("id"))
    )
    counts = [
        (labeler_pseudonym(labeler) if labeler is not None else f"external source: {source}", n)
        for labeler, source, n in rows
    ]
    return sorted(counts, key=lambda item: (-item[1], item[0]))


def _features_yaml(schema: pa.Schema) -> list[dict]:
    """The schema as a card's dataset_info.features (the YAML `datasets` reads back into Features)."""
    def feature(name: str, kind: pa.DataType) -> dict:
        if pa.types.is_list(kind):
            inner = kind.value_type
            return {"name": name, "list": [{"name": f.name, "dtype": _dtype(f.type)} for f in inner]}
        return {"name": name, "dtype": _dtype(kind)}

    return [feature(f.name, f.type) for f in schema]


def _dtype(kind: pa.DataType) -> str:
    return "string" if pa.types.is_string(kind) else str(kind)


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "10M<n<100M"


def _filters_for_card(filters: ExportFilters) -> dict:
    """The filters as the card states them; a labeler filter names the labeler's pseudonym, not their username."""
    shown = filters.as_dict()
    if shown.get("labeler"):
        user = get_user_model().objects.filter(username=shown["labeler"]).first()
        shown["labeler"] = labeler_pseudonym(user.pk) if user is not None else "(no such labeler)"
    return shown


FORMAT_PROSE = {
    "sft": "Demonstrations for supervised fine-tuning: each row is a conversation (`messages`) whose last "
           "turn is the labeler's answer. TRL's `SFTTrainer` reads it as it is.",
    "preference": "Preference pairs: each row holds the `prompt` turns, the `chosen` and the `rejected` answer "
                  "(one assistant turn each) and how strongly the first was preferred. TRL's `DPOTrainer` and "
                  "`RewardTrainer` read it as it is.",
}


def dataset_card(
    *, project: Project, fmt: str, filters: ExportFilters, license: str, schema: pa.Schema, summary: DatasetSummary,
    labelers: list[tuple[str, int]], exported_at,
) -> DatasetCard:
    data = DatasetCardData(
        license=license,
        pretty_name=project.name,
        task_categories=["text-generation"],
        tags=["feedbackloop", "trl", fmt, *(["dpo", "reward-modeling"] if fmt == "preference" else ["sft"])],
        size_categories=[_size_category(summary.rows)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        dataset_info={
            "features": _features_yaml(schema),
            "splits": [{"name": "train", "num_bytes": sum(s["bytes"] for s in summary.shards),
                        "num_examples": summary.rows}],
            "download_size": sum(s["bytes"] for s in summary.shards),
            "dataset_size": sum(s["bytes"] for s in summary.shards),
        },
    )
    columns = "\n".join(f"- `{f.name}`: {_column_prose(f)}" for f in schema)
    who = "\n".join(f"| `{name}` | {n} |" for name, n in labelers) or "| (none) | 0 |"
    shown_filters = _filters_for_card(filters)
    filter_text = "\n".join(f"- `{key}`: `{value}`" for key, value in sorted(shown_filters.items())) or (
        "- none: every annotation that counts (rejected work is never exported; a correction replaces "
        "the annotation it corrects)"
    )
    shards = "\n".join(f"| `{s['path']}` | {s['rows']} | `{s['sha256']}` |" for s in summary.shards)
    text = f"""---
{data.to_yaml()}
---

# {project.name}: {fmt} data

{FORMAT_PROSE[fmt]}

Exported from the FeedbackLoop project `{project.slug}` on {exported_at:%Y-%m-%d %H:%M:%S} UTC.

## Schema

{columns}

## Counts

{summary.rows} rows in {len(summary.shards)} parquet file{'s' if len(summary.shards) != 1 else ''}, one split (`train`).

## Who labelled

Annotations behind the rows, per labeler (a stable pseudonym) or per external source the labels
were imported from.

| labeler or source | annotations |
|---|---|
{who}

## Provenance

- project: `{project.slug}` ("{project.name}")
- export format: `{fmt}`
- exported at: {exported_at.isoformat()}
- filters:
{_indent(filter_text)}

| file | rows | sha256 |
|---|---|---|
{shards}

Load it with `datasets.load_dataset("path/to/this/folder")`.
"""
    return DatasetCard(text)


def _column_prose(column: pa.Field) -> str:
    if pa.types.is_list(column.type):
        return "a list of turns, each `{role, content}`"
    if column.name == "weight":
        return "the consensus confidence of the pair, as a weight (float)"
    return "how strongly `chosen` was preferred (float)"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
