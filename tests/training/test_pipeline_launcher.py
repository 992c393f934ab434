"""The warm pipeline launcher and pipeline_start: a real launcher process, real forks, real signals.

These launchers skip the ML imports (--no-preload) and run a stand-in module, so each test takes
a fraction of a second; test_worker.py runs the real pipelines through a worker's real launcher.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from django.conf import settings

from jobs import pipeline_process
from training.pipelines import launcher
from jobs.workers import pid_alive as _pid_alive  # alive and not a zombie

CHILD = "tests.training.launcher_child"


def child_command(*args: str) -> list[str]:
    return [sys.executable, "-m", CHILD, *args]


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(settings.BASE_DIR), **extra}


@pytest.fixture
def socket_path(tmp_path_factory):
    # Unix socket paths must stay short; pytest's tmp_path can be long.
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="fl-"))
    yield str(folder / "l.sock")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def launcher_process(socket_path, monkeypatch):
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.pipelines.launcher", "--socket", socket_path, "--no-preload",
         "--modules", "tests.training.", "--parent-pid", str(os.getpid())],
        cwd=settings.BASE_DIR, env=env(), stdin=subprocess.DEVNULL,
    )
    assert wait_until(lambda: os.path.exists(socket_path)), "the launcher did not listen"
    monkeypatch.setenv(pipeline_process.LAUNCHER_ENV, socket_path)
    monkeypatch.setattr(pipeline_process, "PIPELINE_PREFIX", "tests.training.")
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def read_all(proc) -> list[str]:
    return [line.rstrip("\n") for line in proc.stdout]


def test_a_forked_pipeline_streams_its_output_and_reports_its_exit_status(launcher_process):
    proc, how = pipeline_process.pipeline_start(child_command("3", "0.3"), env=env(LAUNCHER_TEST_MARKER="m1"))
    assert how == "forked by the warm launcher"
    lines = read_all(proc)
    assert proc.wait(timeout=10) == 3
    first = json.loads(lines[0])
    assert first == {"pid": proc.pid, "cwd": str(settings.BASE_DIR), "marker": "m1",
                     "argv0": first["argv0"], "name": "__main__"}
    assert first["argv0"].endswith("launcher_child.py")
    assert proc.pid != launcher_process.pid and "to stderr" in lines and lines.count("tick") >= 2
    assert os.getpgid(launcher_process.pid) != proc.pid  # the child leads its own process group


def test_an_exception_in_the_pipeline_exits_1_with_its_traceback(launcher_process):
    proc, _ = pipeline_process.pipeline_start(child_command("raise"), env=env())
    output = "\n".join(read_all(proc))
    assert proc.wait(timeout=10) == 1
    assert "RuntimeError: the stand-in pipeline failed" in output and "Traceback" in output


def test_a_killed_pipeline_reports_the_signal_like_subprocess(launcher_process):
    proc, _ = pipeline_process.pipeline_start(child_command("0", "30"), env=env())
    assert proc.stdout.readline().startswith("{")
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL


def test_the_pipeline_dies_when_the_worker_process_that_started_it_goes_away(launcher_process):
    proc, _ = pipeline_process.pipeline_start(child_command("0", "30"), env=env())
    assert proc.stdout.readline().startswith("{")
    proc._conn.close()  # what the kernel does to the connection when the worker process dies
    assert wait_until(lambda: not _pid_alive(proc.pid)), "the orphaned pipeline kept running"
    assert launcher_process.poll() is None  # the launcher serves on
    again, how = pipeline_process.pipeline_start(child_command("0"), env=env())
    read_all(again)
    assert how == "forked by the warm launcher" and again.wait(timeout=10) == 0


def test_several_pipelines_run_at_once(launcher_process):
    procs = [pipeline_process.pipeline_start(child_command(str(code), "0.5"), env=env())[0] for code in (0, 4, 5)]
    assert len({p.pid for p in procs}) == 3
    outputs = [read_all(p) for p in procs]
    assert [p.wait(timeout=10) for p in procs] == [0, 4, 5]
    assert all(out.count("tick") >= 3 for out in outputs)


def test_an_environment_the_launcher_imported_differently_starts_cold(launcher_process):
    proc, how = pipeline_process.pipeline_start(child_command("0"), env=env(HF_HUB_OFFLINE="0", LAUNCHER_TEST_MARKER="c"))
    assert how.startswith("cold start (launcher unavailable:") and "HF_HUB_OFFLINE" in how
    assert isinstance(proc, subprocess.Popen)
    first = json.loads(proc.stdout.readline())
    assert first["marker"] == "c" and proc.wait(timeout=30) == 0


def test_a_module_outside_the_allowed_prefix_is_refused(launcher_process, monkeypatch):
    monkeypatch.setattr(pipeline_process, "PIPELINE_PREFIX", "tests.")
    proc, how = pipeline_process.pipeline_start([sys.executable, "-m", "tests.factories"], env=env())
    assert "module must start with tests.training." in how and isinstance(proc, subprocess.Popen)
    proc.wait(timeout=30)


def test_without_a_launcher_pipelines_start_cold(monkeypatch, tmp_path):
    monkeypatch.setenv(pipeline_process.LAUNCHER_ENV, str(tmp_path / "absent.sock"))
    monkeypatch.setattr(pipeline_process, "PIPELINE_PREFIX", "tests.training.")
    proc, how = pipeline_process.pipeline_start(child_command("7"), env=env())
    assert how.startswith("cold start (launcher unavailable:") and isinstance(proc, subprocess.Popen)
    read_all(proc)
    assert proc.wait(timeout=30) == 7
    monkeypatch.delenv(pipeline_process.LAUNCHER_ENV)
    proc, how = pipeline_process.pipeline_start(child_command("0"), env=env())
    assert how == "cold start"
    proc.wait(timeout=30)


def test_the_launcher_exits_when_its_worker_is_gone(socket_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.pipelines.launcher", "--socket", socket_path, "--no-preload",
         "--parent-pid", "1"],  # not its parent: as if the worker had died and init adopted it
        cwd=settings.BASE_DIR, env=env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.wait(timeout=10) == 0
    assert "the worker that started this launcher is gone" in proc.stderr.read()
    assert not os.path.exists(socket_path)


def test_the_launcher_refuses_to_serve_if_its_imports_initialised_cuda(monkeypatch):
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    with pytest.raises(RuntimeError, match="initialised CUDA"):
        launcher.preload(modules=(), attributes={}, calls=())


def test_only_import_time_variables_must_match():
    loaded = launcher.import_time_env({"HF_HUB_OFFLINE": "1", "PATH": "/a", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"})
    assert loaded == {"HF_HUB_OFFLINE": "1"}
    assert launcher.env_mismatch({"HF_HUB_OFFLINE": "1", "PATH": "/b", "RUN_ID": "9"}, loaded) == []
    assert launcher.env_mismatch({"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "1"}, loaded) == ["CUDA_VISIBLE_DEVICES"]
    assert launcher.env_mismatch({}, loaded) == ["HF_HUB_OFFLINE"]


def test_only_a_worker_on_the_gpu_queue_starts_a_launcher(monkeypatch):
    monkeypatch.setattr(pipeline_process, "_launcher", None)
    monkeypatch.delenv(pipeline_process.LAUNCHER_ENV, raising=False)
    assert pipeline_process.launcher_start(queues={"default"}, env=env()) is None
    monkeypatch.setattr(settings, "TRAINING_WARM_START", False)
    assert pipeline_process.launcher_start(queues={"default", "gpu"}, env=env()) is None
    assert pipeline_process.LAUNCHER_ENV not in os.environ
    monkeypatch.setattr(settings, "TRAINING_WARM_START", True)
    proc = pipeline_process.launcher_start(queues={"default", "gpu"}, env=env())
    try:
        path = pipeline_process.launcher_socket_path(os.getpid())
        assert proc is not None and os.environ[pipeline_process.LAUNCHER_ENV] == path
        assert wait_until(lambda: os.path.exists(path)), "the launcher did not listen"
    finally:
        pipeline_process.launcher_stop()  # while it is still importing the ML stack
    assert proc.returncode == 0 and pipeline_process.LAUNCHER_ENV not in os.environ
    assert not os.path.exists(path)
