from django.core.exceptions import PermissionDenied

from annotation.models import Membership
from annotation.selectors import membership_get


def member_project(request, project_id: int, *, admin: bool = False):
    """The project if the user is a member (404 otherwise); admin=True also demands the admin role."""
    membership = membership_get(user=request.user, project_id=project_id)
    if admin and membership.role != Membership.Role.ADMIN:
        raise PermissionDenied("Only project admins may do this.")
    return membership.project
