from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors


@login_required
def project_list(request):
    projects = selectors.project_list_for_user(user=request.user)
    return render(request, "annotation/project_list.html", {"projects": projects})
