"""The training pages, included at /training/ by config/urls.py (the loop's pages are loop/urls.py)."""

from django.urls import path

from . import model_views, tracker_views, views

urlpatterns = [
    path("runs/", views.run_list, name="training-run-list"),
    path("runs/new/", views.run_new, name="training-run-new"),
    path("runs/compare/", views.run_compare, name="training-run-compare"),
    path("runs/<id:run_id>/", views.run_detail, name="training-run-detail"),
    path("runs/<id:run_id>/cancel/", views.run_cancel, name="training-run-cancel"),
    path("runs/<id:run_id>/resume/", views.run_resume, name="training-run-resume"),
    path("runs/<id:run_id>/retry/", views.run_retry, name="training-run-retry"),
    path("runs/<id:run_id>/trackers/<slug:name>.tar", tracker_views.run_tracker_download,
         name="training-run-tracker-download"),
    path("models/", views.model_list, name="training-model-list"),
    path("models/<id:model_id>/", model_views.model_page, name="training-model-detail"),
    path("models/<id:model_id>/download/", model_views.model_download, name="training-model-download"),
    path("models/<id:model_id>/push/", model_views.model_hub_push, name="training-model-hub-push"),
    path("projects/<id:project_id>/reward-checks/", views.reward_checks_start, name="training-reward-checks"),
]
