"""Training API routes; included by config/api_router.py."""

from django.urls import path

from . import generation as generation_views
from . import views

urlpatterns = [
    path("models/", views.ModelListCreateApi.as_view(), name="api-model-list"),
    path("training-runs/", views.TrainingRunListCreateApi.as_view(), name="api-run-list"),
    path("training-runs/<id:run_id>/", views.TrainingRunDetailApi.as_view(), name="api-run-detail"),
    path("training-runs/<id:run_id>/cancel/", views.TrainingRunCancelApi.as_view(), name="api-run-cancel"),
    path("training-runs/<id:run_id>/resume/", views.TrainingRunResumeApi.as_view(), name="api-run-resume"),
    path("training-runs/<id:run_id>/retry/", views.TrainingRunRetryApi.as_view(), name="api-run-retry"),
    path("training-runs/defaults/<str:kind>/", views.PipelineDefaultsApi.as_view(), name="api-run-defaults"),
    path("projects/<id:project_id>/generate/", generation_views.GenerationStartApi.as_view(), name="api-generate"),
    path("projects/<id:project_id>/leaderboard/", generation_views.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("projects/<id:project_id>/reward-checks/", views.RewardChecksApi.as_view(), name="api-reward-checks"),
    path("generation-jobs/", generation_views.GenerationJobListApi.as_view(), name="api-generation-job-list"),
    path("generation-jobs/<id:job_id>/", generation_views.GenerationJobDetailApi.as_view(), name="api-generation-job-detail"),
    path(
        "generation-jobs/<id:job_id>/cancel/", generation_views.GenerationJobCancelApi.as_view(),
        name="api-generation-job-cancel",
    ),
    path("evaluations/", generation_views.EvaluationListCreateApi.as_view(), name="api-evaluation-list"),
    path("evaluations/<id:evaluation_id>/", generation_views.EvaluationDetailApi.as_view(), name="api-evaluation-detail"),
]
