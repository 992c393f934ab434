"""A model's page and its download, for those who may train in its project (or anywhere, for a global model)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from annotation.errors import ServiceError
from annotation.ids import as_id

from . import model_detail, model_push, selectors


def _model(request, model_id: int):
    pk = as_id(model_id)
    model = (
        selectors.model_list_for_user(user=request.user)
        .select_related("project", "parent", "produced_by__snapshot").filter(pk=pk).first()
        if pk is not None else None
    )
    if model is None:
        raise Http404("No such model.")
    return model


@login_required
def model_page(request, model_id: int):
    return _model_page(request, _model(request, model_id))


@login_required
@require_POST
@sensitive_post_parameters("token")
def model_hub_push(request, model_id: int):
    """Push the model's directory to the Hugging Face Hub (on a worker); its page lists the pushes."""
    model = _model(request, model_id)
    try:
        push = model_push.model_push_start(
            model=model, user=request.user, repo_id=request.POST.get("repo_id"), token=request.POST.get("token"),
            private=request.POST.get("private") or "false",
        )
    except ServiceError as error:
        return _model_page(request, model, push_error=error, status=error.status_code)
    messages.success(request, f"Pushing to {push.repo_id} on the Hugging Face Hub: its status is below.")
    return redirect("training-model-detail", model_id=model.pk)


def _model_page(request, model, *, push_error: ServiceError | None = None, status: int = 200):
    return render(request, "training/model_detail.html", {
        "nav_section": "models",
        "model": model,
        "metrics": model_detail.metrics_key_first(model),
        "lineage": model_detail.lineage(model),
        "card": model_detail.model_card(model),
        "downloadable": model_detail.model_directory(model) is not None,
        "pushes": list(model_push.model_pushes(model=model)),
        "push_error": push_error,
        "push_values": request.POST if push_error else {},
        **model_detail.uses(model),
    }, status=status)


@login_required
def model_download(request, model_id: int):
    """The model's directory as a tar, streamed; 404 for a hub id or files that are gone."""
    model = _model(request, model_id)
    folder = model_detail.model_directory(model)
    if folder is None:
        raise Http404("This model has no files here to download (a hub id, or its directory is gone).")
    response = StreamingHttpResponse(model_detail.archive_chunks(model, folder), content_type="application/x-tar")
    response["Content-Disposition"] = f'attachment; filename="{model.name}.tar"'
    return response
