import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("feedbackloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()



@signals.worker_init.connect
def start_pipeline_launcher(sender=None, **kwargs):
    """A worker on the gpu queue starts its warm pipeline launcher before its pool forks."""
    from training import pipeline_process, services

    queues = sender.app.amqp.queues
    names = set((queues.consume_from or queues).keys())
    pipeline_process.launcher_start(queues=names, env=services.pipeline_env())


@signals.worker_shutdown.connect
def stop_pipeline_launcher(**kwargs):
    from training import pipeline_process

    pipeline_process.launcher_stop()
