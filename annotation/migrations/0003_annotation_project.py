import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_project(apps, schema_editor):
    Annotation = apps.get_model("annotation", "Annotation")
    Task = apps.get_model("annotation", "Task")
    Annotation.objects.filter(project__isnull=True).update(
        project=Subquery(Task.objects.filter(pk=OuterRef("task_id")).values("project_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_initial")]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="project",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="annotations",
                to="annotation.project",
            ),
        ),
        migrations.RunPython(fill_project, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="annotation",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="annotations", to="annotation.project"
            ),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(fields=["project", "labeler"], name="annotation_project_labeler"),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(fields=["project", "created_at"], name="annotation_project_created"),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(fields=["project", "kind"], name="annotation_project_kind"),
        ),
    ]
