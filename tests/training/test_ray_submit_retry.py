"""Submitting a run's Ray job retries only while the cluster says its job agent is not there yet."""

import pytest

from jobs import executors_ray
from jobs.executors_ray import RayExecutor, RayUnavailable

NO_AGENT = ("Request failed with status code 500: No available agent to submit job, please try again later..")


class FlakyClient:
    """A JobSubmissionClient whose first `failures` submissions fail with `error`."""

    def __init__(self, failures: int, error: str):
        self.failures, self.error, self.submitted = failures, error, []

    def submit_job(self, **kwargs):
        if self.failures:
            self.failures -= 1
            raise RuntimeError(self.error)
        self.submitted.append(kwargs["submission_id"])
        return kwargs["submission_id"]


@pytest.fixture
def client(monkeypatch):
    def use(failures: int, error: str = NO_AGENT) -> FlakyClient:
        fake = FlakyClient(failures, error)
        monkeypatch.setattr(executors_ray, "_client", lambda address: fake)
        monkeypatch.setattr(executors_ray, "ray_jobs_stop", lambda **kwargs: [])
        monkeypatch.setattr(executors_ray.time, "sleep", lambda seconds: None)
        return fake

    return use


def executor() -> RayExecutor:
    return RayExecutor(address="http://127.0.0.1:8265", run_id=7)


def test_a_cluster_without_its_job_agent_yet_is_tried_again_until_it_takes_the_job(client):
    fake = client(failures=3)
    handle, note = executor().start(["python", "-c", "pass"], env={})
    assert fake.submitted == [handle.ray_job_id] and handle.ray_job_id.startswith("feedbackloop-run-7-")
    assert note == f"Ray job {handle.ray_job_id} on http://127.0.0.1:8265"


def test_any_other_refusal_fails_at_once_and_names_the_cluster(client):
    fake = client(failures=1, error="Request failed with status code 400: bad runtime_env")
    with pytest.raises(RayUnavailable, match="the Ray cluster at http://127.0.0.1:8265 refused the job: .*bad runtime_env"):
        executor().start(["python"], env={})
    assert fake.submitted == []


def test_an_agent_that_never_comes_fails_after_the_wait(client, monkeypatch):
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(executors_ray.time, "monotonic", lambda: next(clock))
    fake = client(failures=10_000)
    with pytest.raises(RayUnavailable, match="No available agent"):
        executor().start(["python"], env={})
    assert fake.submitted == [] and fake.failures > 10_000 - 10  # gave up after AGENT_WAIT_SECONDS, not sooner
