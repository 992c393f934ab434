"""Django admin for the annotation models. Lists join what they show and never load big FKs whole."""

from django.contrib import admin

from .models import (
    Annotation, GoldRecord, HubPush, Lease, Membership, Project, Prompt, Response, ReviewItem, Task, TaskResponse,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "overlap", "dynamic_overlap", "lease_seconds", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    list_select_related = ["user", "project"]
    search_fields = ["user__username", "project__name"]
    raw_id_fields = ["user", "project"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "created_at"]
    list_filter = ["project"]
    list_select_related = ["project"]
    search_fields = ["external_id"]
    raw_id_fields = ["project"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "source", "model_version", "author", "created_at"]
    list_filter = ["source"]
    list_select_related = ["prompt", "model_version", "author"]
    search_fields = ["prompt__external_id"]
    raw_id_fields = ["prompt", "model_version", "author"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table


class TaskResponseInline(admin.TabularInline):
    model = TaskResponse
    extra = 0
    raw_id_fields = ["response"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "done", "required", "priority", "created_at"]
    list_filter = ["project", "kind", "status", "is_gold"]
    list_select_related = ["project"]
    search_fields = ["prompt__external_id"]
    raw_id_fields = ["project", "prompt"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [TaskResponseInline]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table


@admin.register(TaskResponse)
class TaskResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "response", "position"]
    list_select_related = ["task", "response"]
    raw_id_fields = ["task", "response"]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "labeler", "project", "expires_at", "created_at"]
    list_filter = ["project"]
    list_select_related = ["task", "labeler", "project"]
    search_fields = ["labeler__username"]
    raw_id_fields = ["task", "labeler", "project"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "project", "labeler", "kind", "time_spent_ms", "lease_expired", "created_at"]
    # The project filter lists projects (a small table), not the distinct values of annotations.
    list_filter = ["kind", "task__project", "lease_expired"]
    list_select_related = ["task__project", "labeler"]
    search_fields = ["labeler__username"]
    raw_id_fields = ["task", "labeler", "response"]
    readonly_fields = ["client_id", "created_at", "updated_at"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table

    @admin.display(ordering="task__project", description="project")
    def project(self, obj: Annotation):
        return obj.task.project


# Review ----------------------------------------------------------------------------------------


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    """The review queue. Verdicts are given on the review page or the API, which keep the counts right."""

    list_display = ["id", "annotation", "project", "labeler", "reason", "status", "verdict", "reviewer", "decided_at"]
    list_filter = ["status", "verdict", "project"]
    list_select_related = ["annotation", "project", "labeler", "reviewer"]
    search_fields = ["labeler__username", "reviewer__username", "reason"]
    raw_id_fields = ["annotation", "project", "task", "labeler", "leased_by", "reviewer", "correction"]
    readonly_fields = [f.name for f in ReviewItem._meta.concrete_fields]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table

    def has_add_permission(self, request) -> bool:
        return False  # items come from the draw and from flags, never by hand


@admin.register(GoldRecord)
class GoldRecordAdmin(admin.ModelAdmin):
    list_display = ["labeler", "project", "status", "gold_served", "gold_answered", "gold_correct", "decided_at"]
    list_filter = ["status", "project"]
    list_select_related = ["labeler", "project"]
    search_fields = ["labeler__username"]
    raw_id_fields = ["project", "labeler", "readmitted_by"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(HubPush)
class HubPushAdmin(admin.ModelAdmin):
    list_display = ["repo_id", "kind", "project", "model_version", "status", "created_by", "created_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["project", "model_version", "created_by"]
    search_fields = ["repo_id"]
    raw_id_fields = ["project", "model_version", "created_by"]
    readonly_fields = ["created_at", "updated_at", "finished_at", "status", "error", "url", "rows"]

    def has_add_permission(self, request) -> bool:
        return False  # a push needs a token, which only the export page, the model page and the API take
