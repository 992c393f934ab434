"""A run's tracker files as a tar, for those who may train in its project."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse

from . import archives, selectors, trackers


@login_required
def run_tracker_download(request, run_id: int, name: str):
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    folder = trackers.tracker_folder(run, name)
    if folder is None:
        raise Http404("This run has no files of that tracker.")
    root = f"run-{run.pk}-{name}"
    response = StreamingHttpResponse(archives.tar_chunks(folder, root=root), content_type="application/x-tar")
    response["Content-Disposition"] = f'attachment; filename="{root}.tar"'
    return response
