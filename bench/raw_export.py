"""The raw export of bench/scale.py's big project alone, n times: lines/s, first byte, RSS, query alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench .venv/bin/python bench/raw_export.py --runs 3
    ... --explain     # EXPLAIN (ANALYZE, BUFFERS) of the raw export's query instead

Builds the project as bench/scale.py does if it is missing (--big tasks), then measures the raw export
through the API view with bench/scale.py's measure_export (after one untimed warm-up export).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000, help="tasks of the project")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", default="raw")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) the export's query")
    args = parser.parse_args()
    scale.setup_django()
    from django.db import connection, transaction
    from django.test import Client

    labelers, admin = scale.labelers_and_admin()
    project_id = scale.project_for(slug=f"bench-scale-{args.big}", tasks=args.big, labelers=labelers, admin=admin,
                                   rebuild=False)
    client = Client()
    client.force_login(admin)
    client.get("/api/projects/")
    b"".join(client.get(f"/api/projects/{project_id}/export/", {"format": args.format, "until": "2000-01-01"}))
    if args.explain:
        query = scale.LargestQuery()
        with connection.execute_wrapper(query):
            response = client.get(f"/api/projects/{project_id}/export/", {"format": args.format})
            next(iter(response.streaming_content))
            response.close()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, VERBOSE) {query.sql}", query.params)
            print("\n".join(row[0] for row in cursor.fetchall()))
        return
    for run in range(args.runs):
        load = os.getloadavg()[0]
        result = scale.measure_export(client, project_id, args.format)
        print(f"run {run + 1}: {result['rows']:,} lines, {result['rows_s']:,.0f} lines/s, first byte "
              f"{result['first_ms']:.0f} ms, RSS +{result['rss_mb']:.1f} MB, Python {result['rows_cpu_s']:,.0f} "
              f"lines/CPU-s, query alone {result['alone_rows_s']:,.0f} lines/s "
              f"({result['alone_rows_cpu_s']:,.0f}/CPU-s), load {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
