"""Routes of the project admin pages (dashboard, import, settings)."""

from django.urls import path

from . import admin_views

urlpatterns = [
    path("projects/new/", admin_views.project_create, name="project-create"),
    path("projects/<id:project_id>/dashboard/", admin_views.project_dashboard, name="project-dashboard"),
    path("projects/<id:project_id>/import/", admin_views.project_import, name="project-import"),
    path("projects/<id:project_id>/settings/", admin_views.project_settings, name="project-settings"),
    path(
        "projects/<id:project_id>/settings/members/", admin_views.project_member_add, name="project-member-add"
    ),
    path(
        "projects/<id:project_id>/settings/members/<id:user_id>/role/",
        admin_views.project_member_role,
        name="project-member-role",
    ),
    path(
        "projects/<id:project_id>/settings/members/<id:user_id>/readmit/",
        admin_views.project_member_readmit,
        name="project-member-readmit",
    ),
    path(
        "projects/<id:project_id>/settings/members/<id:user_id>/remove/",
        admin_views.project_member_remove,
        name="project-member-remove",
    ),
    path("projects/<id:project_id>/annotations/", admin_views.project_annotations, name="project-annotations"),
    path("projects/<id:project_id>/tasks/<id:task_id>/", admin_views.project_task, name="project-task"),
    path("projects/<id:project_id>/export/", admin_views.project_export, name="project-export"),
    path("projects/<id:project_id>/export/push/", admin_views.project_hub_push, name="project-hub-push"),
    path("projects/<id:project_id>/prioritise/", admin_views.project_prioritise, name="project-prioritise"),
    path(
        "projects/<id:project_id>/quality/recompute/", admin_views.project_quality_recompute,
        name="project-quality-recompute",
    ),
]
