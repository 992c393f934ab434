"""A pipeline under `accelerate launch` with two CPU processes (gloo), as training/launch.py starts it.

The sft and reward pipelines run this way through a real worker in tests/training/test_distributed_worker.py;
here DPO, whose trainer also keeps a reference model, runs on its own against its one-process twin.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import launch

from .conftest import events, progress

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
# As in test_distributed_worker.py: the same examples per step, only float32 sums in another order.
LOSS_REL_TOLERANCE = 1e-4


def run_pipeline(command: list[str], config: dict, folder: Path) -> str:
    folder.mkdir()
    path = folder / "run.json"
    path.write_text(json.dumps({**config, "output_dir": str(folder)}))
    env = launch.launch_env({**os.environ, "HF_HUB_OFFLINE": "1"}, cpu=True)
    done = subprocess.run([*command[:-1], str(path)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_dpo_on_two_processes_matches_one_process_with_the_same_global_batch(tiny_model, preference_files, tmp_path):
    config = {"model_path": tiny_model, "train_file": preference_files["train"], "max_steps": 4,
              "logging_steps": 1, "save_steps": 1000, "learning_rate": 1e-3, "max_length": 64}
    module = ["-m", "training.pipelines.dpo", "--config", "run.json"]
    one = run_pipeline([sys.executable, *module], {**config, "batch_size": 8}, tmp_path / "one")
    two = run_pipeline(launch.accelerate_command(module=module, processes=2, strategy="ddp", cpu=True, bf16=None),
                       {**config, "batch_size": 4}, tmp_path / "two")

    started = [e for e in events(two) if e["event"] == "start"]
    assert len(started) == 1 and started[0]["world_size"] == 2  # rank 0 alone reports
    assert [e["event"] for e in events(two)][-1] == "done"
    a, b = progress(one, "loss"), progress(two, "loss")
    assert len(a) == len(b) >= 4 and a[0] != a[-1]
    assert b == pytest.approx(a, rel=LOSS_REL_TOLERANCE)
    assert (tmp_path / "two" / "model" / "model.safetensors").exists()
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["train_loss"] == pytest.approx(
        json.loads((tmp_path / "one" / "metrics.json").read_text())["train_loss"], rel=LOSS_REL_TOLERANCE)


def test_ranks_die_with_a_launcher_killed_outright(tiny_model, preference_files, tmp_path):
    """The worker's SIGKILL (or its own death) reaches the launcher alone; its ranks, each in a session of
    its own, die with it (common.die_with_launcher) instead of training on."""
    import signal
    import time

    import psutil

    (tmp_path / "run.json").write_text(json.dumps({
        "model_path": tiny_model, "train_file": preference_files["train"], "output_dir": str(tmp_path / "out"),
        "max_steps": 5000, "batch_size": 2, "logging_steps": 1, "save_steps": 100000, "max_length": 64}))
    module = ["-m", "training.pipelines.dpo", "--config", str(tmp_path / "run.json")]
    command = launch.accelerate_command(module=module, processes=2, strategy="ddp", cpu=True, bf16=None)
    env = launch.launch_env({**os.environ, "HF_HUB_OFFLINE": "1"}, cpu=True)
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                cwd=ROOT, start_new_session=True)
    ranks: list[psutil.Process] = []
    try:
        for line in launcher.stdout:  # training has started on both ranks once rank 0 reports a step
            if '"event": "progress"' in line:
                break
        ranks = [p for p in psutil.Process(launcher.pid).children(recursive=True)
                 if "training.pipelines.dpo" in " ".join(p.cmdline())]
        assert len(ranks) == 2 and all(os.getsid(p.pid) != os.getsid(launcher.pid) for p in ranks)
        os.kill(launcher.pid, signal.SIGKILL)  # the launcher alone, not its group
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks):
            assert time.monotonic() < deadline, "a rank outlived its launcher"
            time.sleep(0.2)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
        for rank in ranks:  # orphans by now, if the test failed: no longer anyone's children
            with contextlib.suppress(psutil.Error):
                rank.kill()
