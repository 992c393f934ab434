# Edit to improve (a labeler's rewrite as a Response) and active sampling (reward scores, agreement).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_annotation_project'),
        ('training', '0001_initial'),  # ModelVersion
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='annotation',
            name='edited_response',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='edit_annotation', to='annotation.response'),
        ),
        migrations.AddField(
            model_name='annotation',
            name='reward_pairs',
            field=models.PositiveSmallIntegerField(default=0, help_text='Ordered pairs of the ranking, ties excluded.'),
        ),
        migrations.AddField(
            model_name='annotation',
            name='reward_pairs_agreeing',
            field=models.PositiveSmallIntegerField(default=0, help_text='Pairs the reward model orders the same way.'),
        ),
        migrations.AddField(
            model_name='annotation',
            name='reward_top_agrees',
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='project',
            name='reward_model',
            field=models.ForeignKey(blank=True, help_text='A reward model version; open comparisons can be prioritised where it is least sure.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='training.modelversion'),
        ),
        migrations.AddField(
            model_name='project',
            name='scoring_message',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='project',
            name='scoring_status',
            field=models.CharField(blank=True, choices=[('', 'Never scored'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='', max_length=16),
        ),
        migrations.AddField(
            model_name='project',
            name='scoring_updated_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='response',
            name='edited_from',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='edits', to='annotation.response'),
        ),
        migrations.AddField(
            model_name='task',
            name='reward_margin',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='taskresponse',
            name='reward_model',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='training.modelversion'),
        ),
        migrations.AddField(
            model_name='taskresponse',
            name='reward_score',
            field=models.FloatField(blank=True, help_text="The reward model's score of this response.", null=True),
        ),
        migrations.AddField(
            model_name='taskresponse',
            name='scored_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='annotation',
            constraint=models.CheckConstraint(condition=models.Q(('edited_response__isnull', True), ('kind', 'comparison'), _connector='OR'), name='annotation_edit_on_comparison'),
        ),
        migrations.AddConstraint(
            model_name='annotation',
            constraint=models.CheckConstraint(condition=models.Q(('reward_pairs_agreeing__lte', models.F('reward_pairs'))), name='annotation_reward_pairs_in_range'),
        ),
    ]
