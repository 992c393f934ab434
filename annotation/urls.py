from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<id:project_id>/label/<str:kind>/", views.task_label, name="task-label"),
    path("", include("annotation.admin_urls")),
]
