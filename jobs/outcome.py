"""What one execution of a job ended with: the value its Celery task returns."""


class Outcome:
    SKIPPED = "skipped"  # nothing to do: another worker has it, or it is no longer queued
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # someone else ended the job (e.g. the recovery sweep) while it ran
    RETRY = "retry"  # killed by a signal we did not send: the task retries it
