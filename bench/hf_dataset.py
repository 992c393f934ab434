"""Time the Hugging Face dataset directory export and show that its memory does not grow with the project.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/hf_dataset.py --sizes 2000 20000

For each size it builds a project of that many judged pair comparisons (bench/exports.py's builder),
writes the preference dataset directory (annotation/hf_dataset.py) into a temp dir, and prints the
rows, the wall time, rows/s, the parquet bytes, and the peak of Python allocations seen by
tracemalloc while writing (pyarrow's own buffers are freed per batch). If the writer held the rows,
the peak would grow with the size; it should stay about one batch. Then it deletes the project.
Not a test: figures depend on the machine.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    args = parser.parse_args()
    import django

    django.setup()
    from annotation.hf_dataset import dataset_dir_write
    from bench.exports import build

    for size in args.sizes:
        project, users, judgments = build(tasks=size, labelers=10, per_task=1, seed=0)
        try:
            with tempfile.TemporaryDirectory() as folder:
                tracemalloc.start()
                started = time.perf_counter()
                summary = dataset_dir_write(project=project, fmt="preference", filters=None, license="mit",
                                            folder=Path(folder))
                seconds = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                size_bytes = sum(s["bytes"] for s in summary.shards)
                print(f"{summary.rows:8d} rows in {seconds:6.2f} s ({summary.rows / seconds:8.0f} rows/s), "
                      f"{size_bytes / 1e6:6.2f} MB of parquet, traced peak {peak / 2**20:6.1f} MiB")
        finally:
            project.delete()
            for user in users:
                user.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
