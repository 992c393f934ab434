from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("", include("annotation.admin_urls")),
]
