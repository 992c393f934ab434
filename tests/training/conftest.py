"""Fixtures for the training tests: the storage root in settings and the tiny base model.

`tiny_base_model` is shared with the browser tests of the training pages; keep its name. The real
Celery worker (`celery_worker_process`) and the session's storage root live in tests/conftest.py,
so that every test directory shares one worker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_STEPS = 30
TINY_SECONDS = 20


@pytest.fixture(autouse=True)
def _storage_root(training_storage_root, settings):
    settings.STORAGE_ROOT = training_storage_root
    settings.BASE_MODEL = "tiny"
    yield training_storage_root


def _tiny_cache_key() -> str:
    """The built model only depends on the builder and its bundled data: cache it across sessions."""
    root = Path(settings.BASE_DIR) / "training" / "pipelines"
    digest = hashlib.sha256(f"{TINY_STEPS}:{TINY_SECONDS}".encode())
    for path in [root / "base_model.py", *sorted((root / "data").glob("*"))]:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_base_model_dir(training_storage_root) -> Path:
    """The tiny model's files under STORAGE_ROOT/models/tiny, built once (and cached under var/)."""
    cache = Path(settings.BASE_DIR) / "var" / "test-cache" / f"tiny-{_tiny_cache_key()}"
    if not (cache / "config.json").exists():
        staging = cache.with_name(f"{cache.name}.{uuid.uuid4().hex}")
        subprocess.run(
            [sys.executable, "-m", "training.pipelines.base_model", "--output", str(staging),
             "--max-steps", str(TINY_STEPS), "--seconds", str(TINY_SECONDS)],
            cwd=settings.BASE_DIR, check=True, stdout=subprocess.DEVNULL,
        )
        try:
            staging.rename(cache)
        except OSError:  # another session built it at the same time
            shutil.rmtree(staging, ignore_errors=True)
    target = training_storage_root / "models" / "tiny"
    if not (target / "model.safetensors").exists():
        # Tests that only register a model at models/tiny leave a placeholder config.json there.
        shutil.copytree(cache, target, dirs_exist_ok=True)
    return target


@pytest.fixture
def tiny_base_model(tiny_base_model_dir):
    """ModelVersion `tiny` (kind base), registered in this test's database; the files are built once."""
    from training import services

    return services.base_model_bootstrap()
