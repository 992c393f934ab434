"""The training pages, included at /training/ by config/urls.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("runs/", views.run_list, name="training-run-list"),
    path("runs/new/", views.run_new, name="training-run-new"),
    path("runs/<int:run_id>/", views.run_detail, name="training-run-detail"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="training-run-cancel"),
    path("models/", views.model_list, name="training-model-list"),
]
