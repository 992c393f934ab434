"""Fewer index entries per imported row: an HH-RLHF line (overlap 1) wrote 41, now 26.

Indexes that another index already covers go: a foreign key that is the first column of a
composite or unique index needs no index of its own (a prompt's project; an annotation's task,
project and labeler; a display position's task). Foreign keys that are empty on most rows (a
response's model version, author and edited_from; a display position's reward model; the
labeler in annotation_by_labeler) are indexed only where set: every lookup by them names a
value, which the partial index serves, and an imported or generated row adds no entry for them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0016_hub_push_heartbeat'),
        ('training', '0010_run_ray_job_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='annotation',
            name='annotation_by_labeler',
        ),
        migrations.AlterField(
            model_name='annotation',
            name='labeler',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='annotations', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='annotation',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='annotations', to='annotation.project'),
        ),
        migrations.AlterField(
            model_name='annotation',
            name='task',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='annotations', to='annotation.task'),
        ),
        migrations.AlterField(
            model_name='prompt',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='prompts', to='annotation.project'),
        ),
        migrations.AlterField(
            model_name='response',
            name='author',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='responses', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='response',
            name='edited_from',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='edits', to='annotation.response'),
        ),
        migrations.AlterField(
            model_name='response',
            name='model_version',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='responses', to='training.modelversion'),
        ),
        migrations.AlterField(
            model_name='taskresponse',
            name='reward_model',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='training.modelversion'),
        ),
        migrations.AlterField(
            model_name='taskresponse',
            name='task',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='task_responses', to='annotation.task'),
        ),
        migrations.AddIndex(
            model_name='annotation',
            index=models.Index(condition=models.Q(('labeler__isnull', False)), fields=['labeler', 'task'], name='annotation_by_labeler'),
        ),
        migrations.AddIndex(
            model_name='response',
            index=models.Index(condition=models.Q(('model_version__isnull', False)), fields=['model_version'], name='response_model_version_set'),
        ),
        migrations.AddIndex(
            model_name='response',
            index=models.Index(condition=models.Q(('author__isnull', False)), fields=['author'], name='response_author_set'),
        ),
        migrations.AddIndex(
            model_name='response',
            index=models.Index(condition=models.Q(('edited_from__isnull', False)), fields=['edited_from'], name='response_edited_from_set'),
        ),
        migrations.AddIndex(
            model_name='taskresponse',
            index=models.Index(condition=models.Q(('reward_model__isnull', False)), fields=['reward_model'], name='task_response_scorer_set'),
        ),
    ]
