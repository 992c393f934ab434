"""report_to: a run's metrics also go to TensorBoard or Trackio, in the run's trackers/ folder."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from training.pipelines import common, sft, synthetic

from .conftest import progress, write_jsonl


def test_report_to_is_checked_like_every_field():
    assert common.config_from_dict(sft.SftPipelineConfig, {
        "model_path": "m", "output_dir": "o", "train_file": "t", "report_to": "tensorboard"}).report_to == "tensorboard"
    with pytest.raises(common.ConfigError) as bad:
        common.config_from_dict(sft.SftPipelineConfig, {
            "model_path": "m", "output_dir": "o", "train_file": "t", "report_to": "mlflow"})
    assert bad.value.field == "report_to" and "tensorboard" in str(bad.value)


def test_a_tracker_that_is_not_installed_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(common, "tracker_installed", lambda name: name in ("none", "tensorboard"))
    with pytest.raises(common.ConfigError) as bad:
        common.config_from_dict(sft.SftPipelineConfig, {
            "model_path": "m", "output_dir": "o", "train_file": "t", "report_to": "wandb"})
    assert bad.value.field == "report_to" and "wandb is not installed" in str(bad.value)
    assert "choose one of none, tensorboard" in str(bad.value)


RUN = """
import json, sys
from training.pipelines import sft
cfg = sft.SftPipelineConfig(model_path=sys.argv[1], train_file=sys.argv[2], output_dir=sys.argv[3], max_steps=8,
                            batch_size=4, learning_rate=1e-3, logging_steps=1, save_steps=1000, report_to=sys.argv[4])
sft.run(cfg)
"""


@pytest.mark.slow
@pytest.mark.parametrize("tracker", ["tensorboard", "trackio"])
def test_the_tracker_holds_the_loss_series_the_run_reported(tiny_model, tmp_path, tracker):
    train = write_jsonl(tmp_path / "train.jsonl", synthetic.sft_rows(32, seed=3))
    out = tmp_path / "run"
    # A process of its own, as on a worker: the trackers read their folders from the environment.
    done = subprocess.run([sys.executable, "-c", RUN, tiny_model, str(train), str(out), tracker],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reported = progress(done.stdout, "loss")
    assert len(reported) >= 8
    folder = out / "trackers" / tracker
    if tracker == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        files = list(folder.rglob("events.out.tfevents.*"))
        assert files, f"no event file under {folder}"
        events = EventAccumulator(str(files[0].parent))
        events.Reload()
        losses = [e.value for e in events.Scalars("train/loss")]
    else:
        databases = list(folder.rglob("*.db"))
        assert databases, f"no trackio database under {folder}"
        with sqlite3.connect(databases[0]) as db:
            rows = [r[0] for r in db.execute("SELECT metrics FROM metrics ORDER BY step")]
        import json

        losses = [m["train/loss"] for m in map(json.loads, rows) if "train/loss" in m]
    assert len(losses) == len(reported)
    assert losses == pytest.approx(reported, rel=1e-4)
