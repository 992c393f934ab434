"""Import lines whose id the project holds already: unchanged, changed and kept, or replaced.

Re-importing a file is safe: a line whose id exists is not imported twice. But a file edited
since its first import used to pass in silence, its edits dropped. Now every line whose content
(messages, responses, metadata or gold answer) differs from the stored prompt is reported:

    line 7: id 'q1' changed since it was first imported; kept the original

In update mode ("mode=update" on the API, a checkbox on the import page, --update on the
command) the stored prompt takes the line's content instead: its messages and metadata, and,
when the responses or the gold answer changed, a new task in place of the old task and its
imported responses. Not where a labeler depends on the prompt, though: an annotation or a skip
on any of its tasks, a lease (someone opened a task of it, and may still submit), or model
responses generated for it keep the original, and the report says why.

The tasks of the prompts to replace are locked first (SELECT ... FOR UPDATE, the lock the claim
and the submit take), so no labeler claims or submits one between the check and the replacement.
Everything runs inside the import's transaction, a batch at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.utils import timezone

from .gold import gold_in_line_terms
from .models import Annotation, Lease, Project, Prompt, Response, Task

MODES = ("add", "update")

CHANGED = "changed since it was first imported; kept the original"
KEPT_BECAUSE = {
    "annotated": "changed since it was first imported; kept the original because it is annotated",
    "leased": "changed since it was first imported; kept the original because a labeler has opened it",
    "generated": "changed since it was first imported; kept the original because model responses were generated for it",
}


def stored_lines_handle(*, project: Project, lines: list[tuple], update: bool, result, tasks_create: Callable) -> None:
    """Compare each (row, stored prompt id) pair; count, report, and in update mode replace.

    tasks_create(rows, prompt_ids) -> count is the importer's own task writer, so a replaced task
    is made exactly as a new one is.
    """
    prompt_ids = [pk for _, pk in lines]
    stored = {
        pk: (messages, metadata)
        for pk, messages, metadata in Prompt.objects.filter(pk__in=prompt_ids).values_list("pk", "messages", "metadata")
    }
    responses = _imported_responses(prompt_ids)
    golds = _stored_golds(prompt_ids)
    changed = []
    for row, pk in lines:
        messages, metadata = stored[pk]
        # A changed gold answer rebuilds the task as changed responses do.
        responses_changed = row.responses != responses.get(pk, []) or row.gold != golds.get(pk)
        if row.messages != messages or row.metadata != metadata or responses_changed:
            changed.append((row, pk, responses_changed))
        else:
            result.skipped_existing += 1
    if not changed:
        return
    if not update:
        for row, _, _ in changed:
            _keep(result, row, CHANGED)
        return
    depended_on = _dependents([pk for _, pk, _ in changed])
    replace = []
    for row, pk, responses_changed in changed:
        reason = depended_on.get(pk)
        if reason:
            _keep(result, row, KEPT_BECAUSE[reason])
        else:
            replace.append((row, pk, responses_changed))
    if replace:
        _replace(replace, tasks_create=tasks_create)
        result.updated_prompts += len(replace)


def _keep(result, row, why: str) -> None:
    result.skipped_existing += 1
    result.changed_kept += 1
    result.notes.add(row.line, f"line {row.line}: id '{row.external_id[:50]}' {why}", id=row.external_id)


def _imported_responses(prompt_ids: list[int]) -> dict[int, list[str]]:
    """{prompt id: the texts of its imported responses, in the order the line gave them (pk order)}."""
    texts: dict[int, list[str]] = defaultdict(list)
    rows = (
        Response.objects.filter(prompt_id__in=prompt_ids, source=Response.Source.IMPORT)
        .order_by("prompt_id", "pk")
        .values_list("prompt_id", "text")
    )
    for prompt_id, text in rows:
        texts[prompt_id].append(text)
    return texts


def _stored_golds(prompt_ids: list[int]) -> dict[int, dict]:
    """{prompt id: its gold task's answer in a line's terms (response indexes)}, for the gold ones."""
    golds = dict(Task.objects.filter(prompt_id__in=prompt_ids, is_gold=True).values_list("prompt_id", "gold"))
    if not golds:
        return {}
    ids: dict[int, list[int]] = defaultdict(list)
    rows = (
        Response.objects.filter(prompt_id__in=list(golds), source=Response.Source.IMPORT)
        .order_by("prompt_id", "pk")
        .values_list("prompt_id", "pk")
    )
    for prompt_id, pk in rows:
        ids[prompt_id].append(pk)
    return {prompt_id: gold_in_line_terms(gold, ids[prompt_id]) for prompt_id, gold in golds.items()}


def _dependents(prompt_ids: list[int]) -> dict[int, str]:
    """{prompt id: why it must stay} for the prompts a labeler depends on, their tasks locked first."""
    list(Task.objects.select_for_update().filter(prompt_id__in=prompt_ids).values_list("pk"))
    reasons: dict[int, str] = {}
    generated = (
        Response.objects.filter(prompt_id__in=prompt_ids).exclude(source=Response.Source.IMPORT)
        .values_list("prompt_id", flat=True)
    )
    leased = Lease.objects.filter(task__prompt_id__in=prompt_ids).values_list("task__prompt_id", flat=True)
    annotated = Annotation.objects.filter(task__prompt_id__in=prompt_ids).values_list("task__prompt_id", flat=True)
    # The last reason found wins, so "annotated" is the one given when there are several.
    for reason, query in (("generated", generated), ("leased", leased), ("annotated", annotated)):
        for prompt_id in query.distinct():
            reasons[prompt_id] = reason
    return reasons


def _replace(lines: list[tuple], *, tasks_create: Callable) -> None:
    """The lines' content into their stored prompts; new tasks where the responses changed."""
    now = timezone.now()
    Prompt.objects.bulk_update(
        [Prompt(pk=pk, messages=row.messages, metadata=row.metadata, updated_at=now) for row, pk, _ in lines],
        ["messages", "metadata", "updated_at"],
    )
    rebuild = [(row, pk) for row, pk, responses_changed in lines if responses_changed]
    if not rebuild:
        return
    ids = [pk for _, pk in rebuild]
    # Nothing depends on these tasks and responses (checked under the tasks' locks): they go, with
    # their display links, and the line's task takes their place.
    Task.objects.filter(prompt_id__in=ids).delete()
    Response.objects.filter(prompt_id__in=ids, source=Response.Source.IMPORT).delete()
    tasks_create([row for row, _ in rebuild], ids)
