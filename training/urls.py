"""The training pages, included at /training/ by config/urls.py."""

from django.urls import path

from . import generation_views, model_views, tracker_views, views

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
    path("generation/", generation_views.generation_list, name="training-generation-list"),
    path("generation/new/", generation_views.generation_new, name="training-generation-new"),
    path("generation/<id:job_id>/", generation_views.generation_detail, name="training-generation-detail"),
    path("evaluations/", generation_views.evaluation_list, name="training-evaluation-list"),
    path("evaluations/new/", generation_views.evaluation_new, name="training-evaluation-new"),
    path("evaluations/<id:evaluation_id>/", generation_views.evaluation_detail, name="training-evaluation-detail"),
    path("projects/<id:project_id>/leaderboard/", generation_views.leaderboard, name="training-leaderboard"),
    path("projects/<id:project_id>/reward-checks/", views.reward_checks_start, name="training-reward-checks"),
]
