import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("feedbackloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def start_pipeline_launcher(sender=None, **kwargs):
    """A worker on the gpu queue starts its warm pipeline launcher before its pool forks."""
    from jobs import pipeline_process
    from jobs.workers import worker_name
    from training import services

    queues = sender.app.amqp.queues
    names = set((queues.consume_from or queues).keys())
    pipeline_process.launcher_start(queues=names, env=services.pipeline_env())
    if "gpu" in names:  # so that a run asking for more GPUs than any worker has is refused up front
        from training import capacity

        capacity.gpu_capacity_record(worker=worker_name(), gpus=capacity.visible_gpu_count())


@signals.worker_shutdown.connect
def stop_pipeline_launcher(**kwargs):
    from jobs import pipeline_process
    from jobs.workers import worker_name
    from training import capacity

    pipeline_process.launcher_stop()
    capacity.gpu_capacity_forget(worker=worker_name())
