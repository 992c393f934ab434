"""The loop's API routes; included by config/api_router.py."""

from django.urls import path

from . import views

urlpatterns = [
    path("projects/<id:project_id>/generate/", views.GenerationStartApi.as_view(), name="api-generate"),
    path("projects/<id:project_id>/leaderboard/", views.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("generation-jobs/", views.GenerationJobListApi.as_view(), name="api-generation-job-list"),
    path("generation-jobs/<id:job_id>/", views.GenerationJobDetailApi.as_view(), name="api-generation-job-detail"),
    path(
        "generation-jobs/<id:job_id>/cancel/", views.GenerationJobCancelApi.as_view(),
        name="api-generation-job-cancel",
    ),
    path("evaluations/", views.EvaluationListCreateApi.as_view(), name="api-evaluation-list"),
    path("evaluations/<id:evaluation_id>/", views.EvaluationDetailApi.as_view(), name="api-evaluation-detail"),
    path(
        "evaluations/<id:evaluation_id>/battles/", views.EvaluationBattlesApi.as_view(),
        name="api-evaluation-battles",
    ),
]
