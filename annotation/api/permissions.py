"""The API's side of annotation/roles.py: one call per view, answering 404 or 403 as the table says."""

from annotation.models import Project
from annotation.roles import Action, project_access


def project_for(request, project_id, action: Action) -> Project:
    """The project if the request's user may do `action` in it: 404 for non-members, 403 for other roles."""
    return project_access(user=request.user, project_id=project_id, action=action).project
