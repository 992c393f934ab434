"""Snapshot files whose row never committed are swept once they are old enough; the rest stay."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from tests.factories import ProjectFactory
from tests.training.labels import demonstrations_create
from training import snapshots, tasks
from training.models import DatasetSnapshot

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    pass


def age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_the_sweep_removes_old_files_without_a_row_and_keeps_the_rest():
    project = ProjectFactory()
    demonstrations_create(project=project, n=3)
    kept = snapshots.snapshot_freeze(project=project, format=DatasetSnapshot.Format.SFT)
    with pytest.raises(Rollback):
        with transaction.atomic():  # a caller whose transaction fails after the freeze
            lost = snapshots.snapshot_freeze(project=project, format=DatasetSnapshot.Format.SFT)
            raise Rollback
    root = Path(settings.STORAGE_ROOT)
    lost_file, kept_file = root / lost.path, root / kept.path
    assert lost_file.exists() and not DatasetSnapshot.objects.filter(pk=lost.pk).exists()
    crashed = lost_file.parent / ".tmp-0123abcd.jsonl"  # a writer killed mid-file
    crashed.write_text('{"messages": []}\n')
    young = lost_file.parent / "999999999.jsonl"  # may still belong to an open transaction
    young.write_text("{}\n")
    for path in (lost_file, kept_file, crashed):
        age(path, hours=2)

    removed = snapshots.snapshots_sweep_orphans()

    assert sorted(removed) == sorted([lost.path, crashed.relative_to(root).as_posix()])
    assert not lost_file.exists() and not crashed.exists()
    assert kept_file.exists() and snapshots.snapshot_verify(snapshot=kept)
    assert young.exists()
    age(young, hours=2)
    assert tasks.snapshots_sweep_orphans() == 1 and not young.exists()
    assert snapshots.snapshots_sweep_orphans() == []
