"""The `ray` executor: a pipeline runs as a Ray job on an existing cluster, and the worker follows it.

The gpu worker submits the pipeline's argv as the job's entrypoint through Ray's Job Submission
API (the cluster's dashboard address, settings.RAY_ADDRESS), then reads the job's log as if it were
the pipeline's stdout: jobs/stream.py sees the same JSON-lines progress either way. The handle
maps the job's status to an exit code, and stopping it is `stop_job` (Ray sends the entrypoint
SIGTERM, then SIGKILL).

The cluster's nodes see the same storage root at the same path as the worker (a shared file
system), so the run's config, its checkpoints and its model directory are the same files for
whichever node runs the job and whichever worker resumes it. docs/ray.md says how to set one up.

A Ray job outlives the worker that submitted it. So every job of a run is named
`feedbackloop-run-<run id>-<random>`, and before a run's pipeline is submitted, every job of that
run still alive on the cluster is stopped, and waited for: a worker that resumes a lost worker's
run never trains it twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

from .executors import ExecutorUnavailable
from .ray_launch import NODE_LOST_EXIT

JOB_PREFIX = "feedbackloop-run-"
# Where the pipeline's environment reaches the job: what the pipeline reads (paths, the hub, threads,
# trackers), never the worker's own secrets (its database URL, its broker).
ENV_PREFIXES = ("PYTHON", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH", "OMP_", "WANDB_", "TRACKIO_")
POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 60.0
# A job that failed without a driver exit code lost its node or its driver, and a multi-worker job
# whose driver exits NODE_LOST_EXIT lost a rank's node (jobs/ray_launch.py): a signal we did not
# send, so the run is retried from its last checkpoint (training/runner.py), as after the OOM killer.
LOST_CODE = -signal.SIGKILL
STOPPED_CODE = -signal.SIGTERM
# A cluster that stays unreachable this long has lost the job for us: it ends as LOST_CODE, and the
# retry finds the cluster back or fails the run with the reason.
UNREACHABLE_SECONDS = 120.0
# A cluster whose job agent has not registered yet (just started, or its node restarting) answers 500 with
# this message and asks to be tried again; submission retries that for AGENT_WAIT_SECONDS, nothing else.
NO_AGENT = "No available agent to submit job"
AGENT_WAIT_SECONDS = 60.0


class RayUnavailable(ExecutorUnavailable):
    """The cluster cannot be reached, or refused the job."""


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, or a RuntimeError naming the address
        raise RayUnavailable(f"the Ray cluster at {address} did not answer: {exc}") from None


def _is_final(status) -> bool:
    return str(status).rsplit(".", 1)[-1] in ("SUCCEEDED", "FAILED", "STOPPED")


def run_job_prefix(run_id: int) -> str:
    return f"{JOB_PREFIX}{run_id}-"


class RayJobHandle:
    """A Ray job seen as a process (jobs/stream.py's follow_pipeline): stdout, poll(), wait(), send_signal().

    It has no local pid (None), so a signal goes to send_signal, which stops the job.
    """

    pid = None

    def __init__(self, *, client, job_id: str):
        self.ray_job_id = job_id
        self.returncode: int | None = None
        self.args = ["<ray job>", job_id]
        self._client = client
        self._unreachable_since: float | None = None
        self.stdout = self._lines()

    def _chunks(self) -> Iterator[str]:
        """The job's log as it grows: tail_job_logs' websocket, and after it closes whatever it had missed."""
        seen = 0
        loop = asyncio.new_event_loop()
        tail = self._client.tail_job_logs(self.ray_job_id)
        try:
            while True:
                try:
                    chunk = loop.run_until_complete(tail.__anext__())
                except StopAsyncIteration:
                    break
                except Exception:  # the dashboard went away: read the whole log by polling below
                    break
                seen += len(chunk)
                yield chunk
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(tail.aclose())
            loop.close()
        while True:  # the websocket closes when the job ends, or broke: read until the job is final
            final = self.poll() is not None
            try:
                text = self._client.get_job_logs(self.ray_job_id)
            except Exception:
                text = ""
            if len(text) > seen:
                yield text[seen:]
                seen = len(text)
            if final:
                return
            time.sleep(POLL_SECONDS * 4)

    def _lines(self) -> Iterator[str]:
        pending = ""
        for chunk in self._chunks():
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line + "\n"
        if pending:
            yield pending + "\n"

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            info = self._client.get_job_info(self.ray_job_id)
        except Exception:  # the cluster is unreachable: the job's state is unknown, not ended, for a while
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since >= UNREACHABLE_SECONDS:
                self.returncode = LOST_CODE
            return self.returncode
        self._unreachable_since = None
        status = str(info.status).rsplit(".", 1)[-1]
        if status == "SUCCEEDED":
            self.returncode = 0
        elif status == "STOPPED":
            self.returncode = STOPPED_CODE
        elif status == "FAILED":
            code = getattr(info, "driver_exit_code", None)
            lost = not isinstance(code, int) or code in (0, NODE_LOST_EXIT)
            self.returncode = LOST_CODE if lost else code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(POLL_SECONDS)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Any signal stops the job: Ray gives its entrypoint SIGTERM, then SIGKILL after a grace period."""
        with contextlib.suppress(Exception):
            self._client.stop_job(self.ray_job_id)


def ray_jobs_stop(*, address: str, prefix: str, wait: float = STOP_WAIT_SECONDS) -> list[str]:
    """Stop every job on the cluster whose submission id starts with `prefix`, and wait until they are final.

    Returns the ids of the jobs that were still alive. Raises RayUnavailable if the cluster does
    not answer, or a job is still alive after `wait` seconds: starting another copy then would
    have two pipelines write the same run directory.
    """
    client = _client(address)
    try:
        alive = [job.submission_id for job in client.list_jobs()
                 if (job.submission_id or "").startswith(prefix) and not _is_final(job.status)]
    except Exception as exc:
        raise RayUnavailable(f"could not list the jobs of the Ray cluster at {address}: {exc}") from None
    for job_id in alive:
        with contextlib.suppress(Exception):
            client.stop_job(job_id)
    deadline = time.monotonic() + wait
    for job_id in alive:
        while not _is_final(client.get_job_status(job_id)):
            if time.monotonic() >= deadline:
                raise RayUnavailable(f"the Ray job {job_id} of this run did not stop within {wait:.0f} s")
            time.sleep(POLL_SECONDS)
    return alive


def ray_job_stop_request(*, address: str, job_id: str) -> None:
    """Ask the cluster to stop one job, and wait for nothing (the recovery sweep must not block)."""
    with contextlib.suppress(Exception):
        _client(address).stop_job(job_id)


class RayExecutor:
    """A run's pipeline as a Ray job: `num_cpus`/`num_gpus` are what the entrypoint asks the cluster for."""

    def __init__(self, *, address: str, run_id: int, num_cpus: float = 1, num_gpus: float = 0):
        self.address = address
        self.run_id = run_id
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def start(self, command: list[str], *, env: dict) -> tuple[RayJobHandle, str]:
        if not self.address:
            raise RayUnavailable("the run asks for the ray executor, but RAY_ADDRESS is not set on this worker")
        prefix = run_job_prefix(self.run_id)
        stopped = ray_jobs_stop(address=self.address, prefix=prefix)
        client = _client(self.address)
        job_id = f"{prefix}{uuid.uuid4().hex[:12]}"
        env_vars = {k: v for k, v in env.items() if k.startswith(ENV_PREFIXES)}
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                client.submit_job(
                    entrypoint=shlex.join(command), submission_id=job_id, runtime_env={"env_vars": env_vars},
                    entrypoint_num_cpus=self.num_cpus, entrypoint_num_gpus=self.num_gpus or None,
                    metadata={"feedbackloop_run": str(self.run_id)},
                )
                break
            except Exception as exc:
                if NO_AGENT in str(exc) and time.monotonic() < deadline:
                    time.sleep(1.0)  # the head has no job agent yet (a node starting): Ray says try again
                    continue
                raise RayUnavailable(f"the Ray cluster at {self.address} refused the job: {exc}") from None
        note = f"Ray job {job_id} on {self.address}"
        if stopped:
            note += f" (stopped the run's earlier job{'s' if len(stopped) > 1 else ''} {', '.join(stopped)} first)"
        return RayJobHandle(client=client, job_id=job_id), note

    def kill(self, process: RayJobHandle) -> None:
        process.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_WAIT_SECONDS)
