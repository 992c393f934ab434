"""A real two-node Ray cluster on loopback for the Ray tests, started once per session, and its gpu worker.

The head and a second node each offer one CPU, so a run with two workers (one CPU each) has one
rank on each node. Both nodes live on this machine under one temp dir of their own; the processes
of each node are told apart by the temp dir in their command lines, so stopping a node, or the
whole cluster, kills those processes and their descendants by pid and never touches another Ray
cluster on the machine (`ray stop` would stop every one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import celery_worker_spawn, celery_worker_stop, worker_env
from tests.training.test_worker import wait_for

RAY = str(Path(sys.executable).parent / "ray")
# Ports of its own, so that another cluster on this machine (Ray's defaults) never collides with it.
GCS_PORT, DASHBOARD_PORT, CLIENT_PORT = 6392, 8277, 6394
# Each node's dashboard agent (HTTP), which runs the jobs the head is given. Below the kernel's
# ephemeral range (32768-60999 here): a port in it can be held by any client connection of the suite
# at the moment the node starts, and a node whose agent could not bind is one the head has "No
# available agent to submit job" for (a CI run lost all four Ray tests so, with 52398 and 52399).
HEAD_AGENT_PORT, SECOND_NODE_AGENT_PORT = 6396, 6397
ADDRESS = f"http://127.0.0.1:{DASHBOARD_PORT}"
START_TIMEOUT_S = 120


def ray_client():
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(ADDRESS)


def job_status(job_id: str) -> str:
    return str(ray_client().get_job_status(job_id)).rsplit(".", 1)[-1]


def _marked(temp: str) -> set[int]:
    """Pids whose command line names this cluster's temp dir or its GCS (the nodes' daemons), never this process's."""
    mine = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    pids = set()
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid not in mine and any(f"{temp}/" in part or part.endswith(f":{GCS_PORT}")
                                          for part in proc.info["cmdline"] or ()):
            pids.add(proc.pid)
    return pids


def _kill_tree(pids: set[int]) -> None:
    """SIGKILL the processes and every descendant (workers, job drivers, pipelines), listed first."""
    victims = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            victims += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=20)


class LocalRayCluster:
    def __init__(self, temp: str):
        self.temp = temp
        self.address = ADDRESS
        self.second_node: set[int] = set()

    def _start(self, args: list[str]) -> None:
        subprocess.run([RAY, "start", *args, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                        "--temp-dir", self.temp, "--disable-usage-stats"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=START_TIMEOUT_S)

    def start_head(self) -> None:
        self._start(["--head", "--port", str(GCS_PORT), "--dashboard-host", "127.0.0.1",
                     "--dashboard-port", str(DASHBOARD_PORT), "--include-dashboard", "true",
                     "--ray-client-server-port", str(CLIENT_PORT),
                     "--dashboard-agent-listen-port", str(HEAD_AGENT_PORT)])

    def start_second_node(self) -> None:
        before = _marked(self.temp)
        self._start(["--address", f"127.0.0.1:{GCS_PORT}", "--dashboard-agent-listen-port",
                     str(SECOND_NODE_AGENT_PORT)])
        self.second_node = _marked(self.temp) - before
        wait_for(lambda: self.alive_nodes() == 2, timeout=START_TIMEOUT_S, what="the second Ray node", poll=0.5)

    def kill_second_node(self) -> None:
        """The second node vanishes at once: its raylet, its agents, its workers and their pipelines."""
        _kill_tree(self.second_node)
        self.second_node = set()

    def alive_nodes(self) -> int:
        import ray.util.state

        nodes = ray.util.state.list_nodes(address=self.address, limit=100, raise_on_missing_output=False)
        return sum(node.state == "ALIVE" for node in nodes)

    def check_runs_a_job(self) -> None:
        """A job that does nothing runs to the end: the head has a job agent, so a test's failure is its own."""
        client = ray_client()
        job_id = client.submit_job(entrypoint="true", submission_id=f"cluster-check-{os.getpid()}")
        status = wait_for(lambda: (s := job_status(job_id)) in ("SUCCEEDED", "FAILED", "STOPPED") and s,
                          timeout=START_TIMEOUT_S, what="the Ray cluster's first job", poll=0.5)
        assert status == "SUCCEEDED", f"the Ray cluster's first job {status}: {client.get_job_logs(job_id)[-2000:]}"

    def stop(self) -> None:
        _kill_tree(_marked(self.temp))
        shutil.rmtree(self.temp, ignore_errors=True)  # the session's logs and sockets


@pytest.fixture(scope="session")
def ray_cluster():
    """Two nodes with one CPU each (head + dashboard, and a second node); killed by pid at the end."""
    cluster = LocalRayCluster(f"/tmp/ray_ft_{os.getpid()}")
    try:
        cluster.start_head()

        def answers() -> bool:
            try:
                ray_client().list_jobs()
                return True
            except Exception:
                return False

        wait_for(answers, timeout=START_TIMEOUT_S, what="the Ray dashboard's job API", poll=1.0)
        cluster.start_second_node()
        cluster.check_runs_a_job()
        yield cluster
    finally:
        cluster.stop()


def ray_worker_spawn(*, root: Path, log: Path, name: str):
    env = {**worker_env(root), "RAY_ADDRESS": ADDRESS}
    proc = celery_worker_spawn(env=env, log_path=log, queues=name, name=name)
    proc.queue = name
    return proc


@pytest.fixture(scope="session")
def ray_gpu_worker(ray_cluster, django_db_setup, training_storage_root, tmp_path_factory):
    """A real gpu worker that knows the cluster, on a queue of its own (the session's worker does not)."""
    name = f"ray-{os.getpid()}"
    proc = ray_worker_spawn(root=training_storage_root, log=tmp_path_factory.mktemp("ray") / "worker.log", name=name)
    yield proc
    celery_worker_stop(proc)
