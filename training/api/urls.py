"""Training API routes; included by config/api_router.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.ModelListCreateApi.as_view(), name="api-model-list"),
    path("training-runs/", views.TrainingRunListCreateApi.as_view(), name="api-run-list"),
    path("training-runs/<int:run_id>/", views.TrainingRunDetailApi.as_view(), name="api-run-detail"),
    path("training-runs/<int:run_id>/cancel/", views.TrainingRunCancelApi.as_view(), name="api-run-cancel"),
    path("training-runs/defaults/<str:kind>/", views.PipelineDefaultsApi.as_view(), name="api-run-defaults"),
]
