"""A model's page and its download, for those who may train in its project (or anywhere, for a global model)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render

from annotation.ids import as_id

from . import model_detail, selectors


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
    model = _model(request, model_id)
    return render(request, "training/model_detail.html", {
        "nav_section": "models",
        "model": model,
        "metrics": model_detail.metrics_key_first(model),
        "lineage": model_detail.lineage(model),
        "card": model_detail.model_card(model),
        "downloadable": model_detail.model_directory(model) is not None,
        **model_detail.uses(model),
    })


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
