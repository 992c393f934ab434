"""Every API route of the platform, collected in one place."""

from django.urls import include, path

from accounts.api import TokenCreateApi
from annotation.api import dataset_views
from annotation.api import gold_views
from annotation.api import my_work_views
from annotation.api.index import ApiIndexApi
from annotation.api import quality as quality_api
from annotation.api import review_views as review_api
from annotation.api import views as annotation_api

urlpatterns = [
    path("", ApiIndexApi.as_view(), name="api-index"),
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("projects/", annotation_api.ProjectListCreateApi.as_view(), name="api-project-list"),
    path("projects/<id:project_id>/", annotation_api.ProjectDetailApi.as_view(), name="api-project-detail"),
    path("projects/<id:project_id>/members/", annotation_api.ProjectMembersApi.as_view(), name="api-project-members"),
    path("projects/<id:project_id>/import/", annotation_api.ProjectImportApi.as_view(), name="api-project-import"),
    path("projects/<id:project_id>/export/", annotation_api.ProjectExportApi.as_view(), name="api-project-export"),
    path(
        "projects/<id:project_id>/export/counts/", annotation_api.ProjectExportCountsApi.as_view(),
        name="api-project-export-counts",
    ),
    path(
        "projects/<id:project_id>/export/dataset/", dataset_views.ProjectDatasetExportApi.as_view(),
        name="api-project-export-dataset",
    ),
    path("projects/<id:project_id>/hub-pushes/", dataset_views.ProjectHubPushApi.as_view(), name="api-project-hub-pushes"),
    path("hub-pushes/<id:push_id>/", dataset_views.HubPushDetailApi.as_view(), name="api-hub-push-detail"),
    path("projects/<id:project_id>/next/", annotation_api.TaskNextApi.as_view(), name="api-task-next"),
    path("projects/<id:project_id>/quality/", quality_api.ProjectQualityApi.as_view(), name="api-project-quality"),
    path(
        "projects/<id:project_id>/quality/recompute/", quality_api.ProjectQualityRecomputeApi.as_view(),
        name="api-project-quality-recompute",
    ),
    path("projects/<id:project_id>/gold/", gold_views.ProjectGoldApi.as_view(), name="api-project-gold"),
    path("projects/<id:project_id>/qualification/", gold_views.QualificationApi.as_view(), name="api-qualification"),
    path(
        "projects/<id:project_id>/qualification/<id:user_id>/readmit/",
        gold_views.QualificationReadmitApi.as_view(),
        name="api-qualification-readmit",
    ),
    path("projects/<id:project_id>/my-work/", my_work_views.MyWorkApi.as_view(), name="api-my-work"),
    path("annotations/<id:annotation_id>/undo/", my_work_views.AnnotationUndoApi.as_view(), name="api-annotation-undo"),
    path("tasks/<id:task_id>/", annotation_api.TaskDetailApi.as_view(), name="api-task-detail"),
    path("tasks/<id:task_id>/annotations/", annotation_api.AnnotationSubmitApi.as_view(), name="api-annotation-submit"),
    path("tasks/<id:task_id>/skip/", annotation_api.TaskSkipApi.as_view(), name="api-task-skip"),
    path("tasks/<id:task_id>/heartbeat/", annotation_api.TaskHeartbeatApi.as_view(), name="api-task-heartbeat"),
    path("projects/<id:project_id>/reviews/next/", review_api.ReviewNextApi.as_view(), name="api-review-next"),
    path("projects/<id:project_id>/reviews/mine/", review_api.MyReviewsApi.as_view(), name="api-review-mine"),
    path("reviews/<id:review_id>/verdict/", review_api.ReviewVerdictApi.as_view(), name="api-review-verdict"),
]

urlpatterns += [
    path("", include("training.api.urls")), path("", include("loop.api.urls")), path("", include("webhooks.api.urls")),
]
