"""Fixtures for the pipeline tests: a tiny base model and a tiny reward model, built once per session.

No database, no network: HF_HUB_OFFLINE is forced before transformers is imported.
"""
from __future__ import annotations

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# Tiny models gain nothing from intra-op threads, and on a busy machine spinning OpenMP threads
# slow them down by an order of magnitude. Subprocesses (the CLI tests) inherit this too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from training.pipelines import synthetic  # noqa: E402


def write_jsonl(path, rows) -> str:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)


def events(text: str) -> list[dict]:
    """The JSON-lines progress events in captured stdout (other lines ignored)."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return [e for e in out if "event" in e]


def progress(text: str, name: str) -> list[float]:
    """The values of one metric across the progress events."""
    return [e["metrics"][name] for e in events(text) if e["event"] == "progress" and name in e["metrics"]]


def weights(model_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def changed(dir_a, dir_b) -> bool:
    a, b = weights(dir_a), weights(dir_b)
    common = [k for k in a if k in b]
    assert common, "no shared parameter names"
    return any(not (a[k] == b[k]).all() for k in common)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from training.pipelines.base_model import build_tiny_model

    path = tmp_path_factory.mktemp("tiny")
    build_tiny_model(path, max_steps=120, seconds=None, seed=0)  # no time cap: deterministic
    return str(path)


@pytest.fixture(scope="session")
def preference_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("prefs")
    return {
        "train": write_jsonl(root / "train.jsonl", synthetic.preference_rows(240, seed=1)),
        "eval": write_jsonl(root / "eval.jsonl", synthetic.preference_rows(64, seed=2)),
    }


@pytest.fixture(scope="session")
def reward_model(tiny_model, preference_files, tmp_path_factory) -> dict:
    """A reward model trained on the synthetic preferences; returns its dir and metrics."""
    from training.pipelines import reward

    out = tmp_path_factory.mktemp("reward")
    cfg = reward.RewardPipelineConfig(
        model_path=tiny_model, train_file=preference_files["train"], output_dir=str(out),
        eval_file=preference_files["eval"], max_steps=120, batch_size=16, learning_rate=1e-3,
        logging_steps=5, save_steps=1000, seed=0,
    )
    metrics = reward.run(cfg)
    return {"dir": str(out / "model"), "metrics": metrics, "output_dir": str(out)}
