"""The labeler's "My work" page: their past labels with filters and search, review comments and undo."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from . import my_work, selectors, undo
from .errors import InvalidInput

PAGE_SIZE = 50


@login_required
@ensure_csrf_cookie
def my_work_page(request, project_id: int):
    project = selectors.membership_get(user=request.user, project_id=project_id).project
    error, filters = "", {"kind": "", "review": "", "q": ""}
    try:
        filters = my_work.clean_filters(request.GET)
    except InvalidInput as exc:
        error = exc.message
    paginator = Paginator(my_work.my_annotations(labeler=request.user, project=project, **filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = {k: v for k, v in filters.items() if v}
    return render(request, "annotation/my_work.html", {
        "project": project,
        "rows": my_work.rows_for_page(list(page.object_list)),
        "page": page,
        "filters": filters,
        "query": "&".join(f"{k}={v}" for k, v in query.items()),
        "kinds": my_work.KINDS,
        "reviews": my_work.REVIEW_FILTERS,
        "error": error,
        "undo": undo.undo_offer(project_id=project.pk, labeler=request.user),
    }, status=400 if error else 200)
