"""The reviewer's page. Server-rendered; its JS (static/js/review.js) sends the verdict to the API."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from .models import Annotation, ReviewItem
from .reviews import selectors, services
from .roles import Action, project_access

STRENGTH_LABELS = dict(Annotation.Strength.choices)
FLAG_LABELS = dict(Annotation.Flag.choices)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@login_required
@ensure_csrf_cookie
def review_next(request, project_id: int):
    """Lease the reviewer's next annotation to review (or resume the one held) and render it."""
    membership = project_access(user=request.user, project_id=project_id, action=Action.REVIEW)
    project = membership.project
    item = services.review_claim_next(project=project, reviewer=request.user)
    waiting = ReviewItem.objects.filter(project=project, status=ReviewItem.Status.PENDING).count()
    context = {"project": project, "membership": membership, "waiting": waiting}
    if item is None:
        return render(request, "annotation/review_empty.html", context)
    payload = selectors.review_payload(item=item)
    annotation = payload["annotation"]
    responses = payload["task"]["responses"]
    number_of = {r["id"]: index + 1 for index, r in enumerate(responses)}
    for r in responses:
        r["place_label"] = f"{_ordinal(r['place'])}{' (tie)' if r['tied'] else ''}" if r["place"] else "Not ranked"
        r["flag_labels"] = [FLAG_LABELS.get(flag, flag) for flag in r["flags"]]
    ranking_words = [
        " = ".join(f"Response {number_of[rid]}" for rid in group if rid in number_of) for group in annotation["ranking"]
    ]
    edit = annotation["edit"]
    context.update({
        "item": item,
        "task": item.task,
        "payload": payload,
        "annotation": annotation,
        "responses": responses,
        "mode": "demo" if item.task.kind == "demonstration" else ("pair" if len(responses) == 2 else "rank"),
        "ranking_words": " > ".join(ranking_words),
        "strength_label": STRENGTH_LABELS.get(annotation["strength"], ""),
        "edit_number": number_of.get(edit["response_id"]) if edit else None,
    })
    return render(request, "annotation/review.html", context)
