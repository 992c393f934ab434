"""Training API routes; included by config/api_router.py (the loop's routes are loop/api/urls.py)."""

from django.urls import path

from . import hub_views, views

urlpatterns = [
    path("models/", views.ModelListCreateApi.as_view(), name="api-model-list"),
    path("models/<id:model_id>/hub-pushes/", hub_views.ModelHubPushApi.as_view(), name="api-model-hub-pushes"),
    path("training-runs/", views.TrainingRunListCreateApi.as_view(), name="api-run-list"),
    path("training-runs/<id:run_id>/", views.TrainingRunDetailApi.as_view(), name="api-run-detail"),
    path("training-runs/<id:run_id>/cancel/", views.TrainingRunCancelApi.as_view(), name="api-run-cancel"),
    path("training-runs/<id:run_id>/resume/", views.TrainingRunResumeApi.as_view(), name="api-run-resume"),
    path("training-runs/<id:run_id>/retry/", views.TrainingRunRetryApi.as_view(), name="api-run-retry"),
    path("training-runs/estimate/", views.RunMemoryEstimateApi.as_view(), name="api-run-estimate"),
    path("training-runs/defaults/<str:kind>/", views.PipelineDefaultsApi.as_view(), name="api-run-defaults"),
    path("projects/<id:project_id>/reward-checks/", views.RewardChecksApi.as_view(), name="api-reward-checks"),
]
