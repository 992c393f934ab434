"""Import benchmark: a 100,000-line JSONL file through importers.prompts_import, in one pass.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/import_100k.py
    ... --sizes 10000 100000 1000000     # show that memory stays flat as the file grows
    ... --mode hh-rlhf                   # Anthropic HH-RLHF rows, each a comparison with its label

For each size it writes a JSONL file to a temp dir (4 in 5 lines are prompts for
demonstrations, 1 in 5 carries 2-4 responses and becomes a comparison; some are multi-turn
chats), imports it into a fresh project in the database that DATABASE_URL names, and prints the
wall time, rows/s, this process's CPU seconds, the CPU seconds of its PostgreSQL backend (read from
/proc when the server runs on this machine, else "-") and the WAL the import wrote, the growth of
the process's peak RSS, and (in a second, traced import into
another fresh project) the peak of Python allocations seen by tracemalloc. If memory held the
file, the peaks would grow tenfold with the file; they should stay about one batch.
It then re-imports the file to time the all-skipped path (--once: neither this nor the traced
import), and deletes its projects (--keep: it leaves them, for a bench database that is dropped
and made again from a migrated template, `createdb -T`, which is quicker than deleting 100,000
rows' worth of projects).

--mode hh-rlhf writes HH-RLHF rows instead ({"chosen": "\n\nHuman: ...\n\nAssistant: ...",
"rejected": ...}; one in three is a two-exchange conversation), which the import detects: each
row becomes a multi-turn prompt, a comparison of two responses and one imported label, so it
times the public-format path (annotation/import_formats/) and the labels' writes as well.
On a busy machine the wall time mostly measures the wait for a core; the two CPU figures do not.
Not a test: figures depend on the machine.
"""

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory


def write_file(path: Path, lines: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    words = "model answer question river prime kind honest quick summary poem code list explain why how".split()
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40))) + f" ({i})?"
            obj: dict = {"id": f"bench-{i}", "metadata": {"n": i, "source": "bench"}}
            if i % 7 == 3:
                obj["messages"] = [
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": "Could you say more?"},
                    {"role": "user", "content": "Yes: " + text},
                ]
            else:
                obj["prompt"] = text
            if i % 5 == 0:
                obj["responses"] = [f"Response {k} to {i}: " + " ".join(rng.choice(words) for _ in range(20))
                                    for k in range(rng.randint(2, 4))]
            out.write(json.dumps(obj) + "\n")
    return path.stat().st_size


def write_hh_file(path: Path, lines: int, seed: int = 0) -> int:
    """HH-RLHF rows: the same transcript twice but for the assistant's last turn."""
    rng = random.Random(seed)
    words = "model answer question river prime kind honest quick summary poem code list explain why how".split()

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            shared = f"\n\nHuman: {sentence(rng.randint(8, 30))} ({i})?"
            if i % 3 == 0:
                shared += f"\n\nAssistant: {sentence(20)}.\n\nHuman: {sentence(rng.randint(5, 15))}?"
            row = {
                "chosen": f"{shared}\n\nAssistant: Helpful {i}: {sentence(rng.randint(20, 60))}.",
                "rejected": f"{shared}\n\nAssistant: Unhelpful {i}: {sentence(rng.randint(5, 30))}.",
            }
            out.write(json.dumps(row) + "\n")
    return path.stat().st_size


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def server_state() -> tuple[float | None, int]:
    """(CPU seconds of this connection's PostgreSQL backend, or None where /proc cannot show it; WAL position)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return None, 0
        cursor.execute("SELECT pg_backend_pid(), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        pid, wal = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the server runs elsewhere
        return None, int(wal)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(wal)


def run_import(project, path: Path, *, trace: bool):
    from annotation.importers import prompts_import

    if trace:
        tracemalloc.start()
    rss_before = peak_rss_mib()
    server_cpu, wal = server_state()
    start, cpu_start = time.perf_counter(), time.process_time()
    with path.open("rb") as fileobj:
        result = prompts_import(project=project, fileobj=fileobj, filename=path.name)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # this process only: PostgreSQL's work is not in it
    server_cpu_after, wal_after = server_state()
    server = {
        "cpu": None if server_cpu is None else server_cpu_after - server_cpu,
        "wal_mib": (wal_after - wal) / 2**20,
    }
    traced_peak = None
    if trace:
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result, seconds, cpu_seconds, peak_rss_mib() - rss_before, traced_peak, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", action="store_true", help="keep the bench projects (dropping a whole bench "
                        "database made from a migrated template, createdb -T, is quicker than deleting them)")
    parser.add_argument("--once", action="store_true", help="only the timed import: no re-import, no traced import")
    parser.add_argument("--mode", choices=["native", "hh-rlhf"], default="native", help="the file's format")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotation import services
    from annotation.models import Project

    user, _ = get_user_model().objects.get_or_create(username="bench-importer", defaults={"is_superuser": True})
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; mode: {args.mode}")
    print(f"{'lines':>9} {'MiB':>6} {'seconds':>8} {'rows/s':>8} {'py CPU s':>8} {'pg CPU s':>8} {'WAL MiB':>8} "
          f"{'RSS peak +MiB':>14} {'traced peak MiB':>16} {'reimport s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"{args.mode}-{size}.jsonl"
            file_mib = (write_hh_file if args.mode == "hh-rlhf" else write_file)(path, size) / 2**20
            stamp = int(time.time() * 1000)
            projects = [
                services.project_create(name=f"Import bench {size} {i}", slug=f"import-bench-{size}-{i}-{stamp}",
                                        created_by=user)
                for i in range(2)
            ]
            result, seconds, cpu_seconds, rss_growth, _, server = run_import(projects[0], path, trace=False)
            assert result.created_prompts == size, result
            if args.mode == "hh-rlhf":
                assert (result.format, result.created_labels) == ("hh-rlhf", size), result
            reimport_seconds = traced_peak = float("nan")
            if not args.once:
                again, reimport_seconds, _, _, _, _ = run_import(projects[0], path, trace=False)
                assert again.created_prompts == 0 and again.skipped_existing == size, again
                _, _, _, _, traced_peak, _ = run_import(projects[1], path, trace=True)
            server_cpu = "-" if server["cpu"] is None else f"{server['cpu']:.2f}"
            print(f"{size:>9} {file_mib:>6.1f} {seconds:>8.2f} {size / seconds:>8.0f} {cpu_seconds:>8.2f} "
                  f"{server_cpu:>8} {server['wal_mib']:>8.0f} {rss_growth:>14.1f} "
                  f"{traced_peak:>16.1f} {reimport_seconds:>10.2f}", flush=True)
            if not args.keep:
                Project.objects.filter(pk__in=[p.pk for p in projects]).delete()


if __name__ == "__main__":
    main()
