"""Data at scale: exports, snapshot freezing, run creation, the dashboard and the project list, 1k vs 1M tasks.

    createdb -h 127.0.0.1 -U postgres h_scale_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_scale_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_scale_bench .venv/bin/python bench/scale.py
    ... --rebuild        # build both projects again (otherwise they are reused from a previous run)
    ... --big 200000     # a smaller "big" project, for a quick look

It builds two comparison projects in the database DATABASE_URL names (never one named `test`):
--small tasks (1,000) and --big tasks (1,000,000), each with two ~200-character model responses
per task (and each task's shown-responses list, as an import stores it with the links:
annotation/shown_responses.py), and annotations on a fifth of the tasks (200,000 on the big one)
by 20 labelers. The
rows are made by PostgreSQL itself (INSERT ... SELECT over generate_series), with triggers and
foreign-key checks off for the build's transaction (session_replication_role = replica: every row
is consistent by construction), and the progress counters are then filled by one grouped query,
the same figures the triggers would have added. About a minute on 2 cores for 1M tasks.

Then it measures, for each project, through Django's test client with the admin logged in:
  - the preference and the raw export (GET /api/projects/<id>/export/): lines per second, the
    time to the first byte, and the peak growth of this process's RSS while streaming;
  - what bounds the export rate, in figures the machine's load changes less: the export's own
    query run alone in PostgreSQL through one cursor (declared as the export declares it, then
    MOVE ALL: no row leaves the server), in lines per second now and per CPU second of its
    backend (what one core of PostgreSQL gives, whatever Python does; the export reads past
    its first batch with two backends, export_halves.py), and the lines per CPU second of this
    process (Django, the writers, the test client). The backend's CPU needs the database on this
    machine (/proc/<backend pid>); elsewhere it is blank;
  - freezing a preference snapshot (training.snapshots.snapshot_freeze);
  - POST /api/training-runs/ (a reward run on a hub-id base model; the run and its snapshot are
    deleted after, and Celery messages go to an in-memory broker unless CELERY_BROKER_URL is set),
    the best of --repeat (the process's first one also imports the run's code and sets up Celery);
  - the dashboard page and the project list page (and GET /api/projects/) on a cold cache: the
    cache is cleared first, the best of --repeat tries. For the dashboard that is with the rollup
    a Celery worker keeps (annotation/dashboard.py; put back after the clear, untimed) and, on
    its own line, without one (a small project computes it in the request, a big one says it is
    being computed); the rollup's own time, a worker's, is printed too;
and prints them side by side with their targets. Not a test: the figures depend on the machine.
"""

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["DJANGO_DEBUG"] = "0"

LABELERS = 20
ANNOTATED_SHARE = 5  # one task in this many has an annotation
TARGETS = {
    "preference rows/s": (">=", 100_000),
    "raw rows/s": (">=", 100_000),
    "preference first byte ms": ("<=", 100),
    "raw first byte ms": ("<=", 100),
    "export peak RSS growth MB": (None, None),
    "preference query alone lines/s": (None, None),
    "preference query alone lines/CPU-s": (None, None),
    "preference Python lines/CPU-s": (None, None),
    "raw query alone lines/s": (None, None),
    "raw query alone lines/CPU-s": (None, None),
    "raw Python lines/CPU-s": (None, None),
    "snapshot freeze s": (None, None),
    "POST /api/training-runs/ ms": ("<", 200),
    "dashboard cold ms": ("<=", 200),
    "dashboard, no rollup yet ms": ("<=", 200),
    "dashboard rollup (Celery) s": (None, None),
    "project list cold ms": ("<=", 200),
    "GET /api/projects/ cold ms": ("<=", 200),
}


def setup_django():
    import django

    django.setup()
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql":
        sys.exit("bench/scale.py needs PostgreSQL: set DATABASE_URL.")
    if name == "test" or name.startswith("test_"):
        sys.exit(f"Refusing to fill the database '{name}': the test suite's. Use a database of its own.")


# Building -------------------------------------------------------------------------------------


def labelers_and_admin():
    from django.contrib.auth import get_user_model

    users = get_user_model()
    labelers = [users.objects.get_or_create(username=f"bench-scale-labeler-{i}")[0] for i in range(LABELERS)]
    admin, _ = users.objects.get_or_create(username="bench-scale-admin")
    return labelers, admin


def build(*, slug: str, tasks: int, labelers, admin) -> int:
    """A comparison project of `tasks` tasks, a fifth of them annotated once; its id."""
    from django.db import connection, transaction

    from annotation.models import Membership, ProgressCounter, Project

    annotated = tasks // ANNOTATED_SHARE
    started = time.perf_counter()
    steps: dict[str, float] = {}

    def timed(cursor, name: str, sql: str, params=None) -> None:
        begun = time.perf_counter()
        cursor.execute(sql, params)
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - begun
    with transaction.atomic():
        old = Project.objects.filter(slug=slug).first()
        if old is not None:
            drop(old.pk)
        project = Project.objects.create(name=f"Scale {slug}", slug=slug, overlap=1)
        for user in labelers:
            Membership.objects.create(project=project, user=user, role=Membership.Role.LABELER)
        Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            timed(
                cursor, "prompts",
                """
                INSERT INTO annotation_prompt (project_id, messages, external_id, metadata, created_at, updated_at)
                SELECT %s, jsonb_build_array(jsonb_build_object(
                         'role', 'user', 'content', 'Question ' || i || ': ' || repeat('what about this? ', 5))),
                       'q' || i, '{}'::jsonb, now(), now()
                FROM generate_series(1, %s) AS i
                """,
                [project.pk, tasks],
            )
            timed(
                cursor, "tasks",
                """
                INSERT INTO annotation_task (project_id, prompt_id, kind, priority, required, done, status, metadata,
                                             is_gold, created_at, updated_at)
                SELECT p.project_id, p.id, 'comparison', 0, 1, CASE WHEN p.n <= %s THEN 1 ELSE 0 END,
                       CASE WHEN p.n <= %s THEN 'done' ELSE 'open' END, '{}'::jsonb, false, now(), now()
                FROM (SELECT id, project_id, ROW_NUMBER() OVER (ORDER BY id) AS n
                      FROM annotation_prompt WHERE project_id = %s) p
                ORDER BY p.id
                """,
                [annotated, annotated, project.pk],
            )
            for position, letter in enumerate("AB"):
                timed(
                    cursor, "responses",
                    """
                    INSERT INTO annotation_response (prompt_id, text, source, created_at, updated_at)
                    SELECT id, 'Answer ' || %s || ' to ' || external_id || ': ' || repeat('a considered reply, ', 10),
                           'model', now(), now()
                    FROM annotation_prompt WHERE project_id = %s ORDER BY id
                    """,
                    [letter, project.pk],
                )
                timed(
                    cursor, "shown responses",
                    """
                    INSERT INTO annotation_taskresponse (task_id, response_id, position)
                    SELECT t.id, r.id, %s FROM annotation_task t JOIN annotation_response r ON r.prompt_id = t.prompt_id
                    WHERE t.project_id = %s AND r.text LIKE %s
                    """,
                    [position, project.pk, f"Answer {letter} %"],
                )
            timed(  # what an import stores with the links (annotation/shown_responses.py), its JSON as PostgreSQL's
                cursor, "shown lists",
                """
                INSERT INTO annotation_shownresponses (task_id, json)
                SELECT tr.task_id, '[' || string_agg('{"id": ' || r.id || ', "text": ' || to_json(r.text)::text || '}',
                                                     ', ' ORDER BY tr.position) || ']'
                FROM annotation_task t JOIN annotation_taskresponse tr ON tr.task_id = t.id
                JOIN annotation_response r ON r.id = tr.response_id
                WHERE t.project_id = %s GROUP BY tr.task_id
                """,
                [project.pk],
            )
            timed(
                cursor, "annotations",
                """
                INSERT INTO annotation_annotation (
                  task_id, project_id, labeler_id, client_id, kind, time_spent_ms, lease_expired, text, ranking,
                  strength, flags, all_bad, rationale, reason, reward_pairs, reward_pairs_agreeing, review_state,
                  created_at, updated_at)
                SELECT t.id, t.project_id, (%s::int[])[1 + t.n %% %s], gen_random_uuid(), 'comparison',
                       1000 + (t.n * 7919) %% 20000, false, '',
                       CASE WHEN t.n %% 3 = 0 THEN jsonb_build_array(jsonb_build_array(b.response_id),
                                                                    jsonb_build_array(a.response_id))
                            ELSE jsonb_build_array(jsonb_build_array(a.response_id), jsonb_build_array(b.response_id))
                       END,
                       'better', '{}'::jsonb, false, '', '', 0, 0, '',
                       now() - (%s - t.n) * interval '3 seconds', now()
                FROM (SELECT id, project_id, ROW_NUMBER() OVER (ORDER BY id) AS n
                      FROM annotation_task WHERE project_id = %s AND done = 1) t
                JOIN annotation_taskresponse a ON a.task_id = t.id AND a.position = 0
                JOIN annotation_taskresponse b ON b.task_id = t.id AND b.position = 1
                ORDER BY t.id
                """,
                [[u.pk for u in labelers], LABELERS, annotated, project.pk],
            )
            cursor.execute("SET LOCAL session_replication_role = origin")
            shards = ProgressCounter.SHARDS
            cursor.execute(
                f"""
                INSERT INTO annotation_progresscounter (project_id, kind, shard, tasks, done_tasks, annotations, required)
                SELECT project_id, kind, id %% {shards}, COUNT(*), SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END),
                       SUM(done), SUM(required)
                FROM annotation_task WHERE project_id = %s AND NOT is_gold GROUP BY project_id, kind, id %% {shards}
                """,
                [project.pk],
            )
    begun = time.perf_counter()
    # What autovacuum does to a table soon after such inserts: statistics, and the visibility map that lets the
    # raw export read a task's shown responses from the index alone (migration 0018). Outside a transaction.
    with connection.cursor() as cursor:
        for table in ("annotation_prompt", "annotation_task", "annotation_response", "annotation_taskresponse",
                      "annotation_shownresponses", "annotation_annotation", "annotation_progresscounter"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    steps["vacuum analyze"] = time.perf_counter() - begun
    detail = ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items())
    print(f"built {slug}: {tasks:,} tasks, {annotated:,} annotations in {time.perf_counter() - started:.1f} s "
          f"({detail})", flush=True)
    return project.pk


def drop(project_id: int) -> None:
    """Delete a bench project: its big tables by SQL (the ORM would load every row to cascade), then the rest."""
    from django.db import connection

    from annotation.models import Project

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM annotation_annotation WHERE project_id = %s", [project_id])
        cursor.execute("DELETE FROM annotation_taskresponse WHERE task_id IN "
                       "(SELECT id FROM annotation_task WHERE project_id = %s)", [project_id])
        cursor.execute("DELETE FROM annotation_shownresponses WHERE task_id IN "
                       "(SELECT id FROM annotation_task WHERE project_id = %s)", [project_id])
        cursor.execute("DELETE FROM annotation_task WHERE project_id = %s", [project_id])
        cursor.execute("DELETE FROM annotation_response WHERE prompt_id IN "
                       "(SELECT id FROM annotation_prompt WHERE project_id = %s)", [project_id])
        cursor.execute("DELETE FROM annotation_prompt WHERE project_id = %s", [project_id])
        cursor.execute("DELETE FROM annotation_progresscounter WHERE project_id = %s", [project_id])
        cursor.execute("SET LOCAL session_replication_role = origin")
    Project.objects.filter(pk=project_id).delete()


def project_for(*, slug: str, tasks: int, labelers, admin, rebuild: bool) -> int:
    from annotation.models import Project, ShownResponses, Task

    project = Project.objects.filter(slug=slug).first()
    if (project is not None and not rebuild and Task.objects.filter(project=project).count() == tasks
            and ShownResponses.objects.filter(task__project=project).exists()):  # built before they were stored: again
        return project.pk
    return build(slug=slug, tasks=tasks, labelers=labelers, admin=admin)


# Measuring ------------------------------------------------------------------------------------


class PeakRss:
    """This process's resident memory, sampled every 50 ms in a thread: its peak above the start."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def backend_cpu_s() -> float:
    """CPU seconds used so far by the PostgreSQL backend of Django's connection (nan where it is not on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class LargestQuery:
    """The longest statement that reads annotation_annotation while it is active: an export's own query."""

    def __init__(self):
        self.sql, self.params = "", None

    def __call__(self, execute, sql, params, many, context):
        if "annotation_annotation" in sql and len(sql) > len(self.sql):
            self.sql, self.params = sql, params
        return execute(sql, params, many, context)


def measure_export(client, project_id: int, fmt: str) -> dict:
    """One streamed export through the API view: lines per second, first byte, peak RSS growth, this process's CPU.

    Also its query run alone (query_alone).
    """
    from django.db import connection

    query = LargestQuery()
    here_before = time.process_time()
    with PeakRss() as rss, connection.execute_wrapper(query):
        started = time.perf_counter()
        response = client.get(f"/api/projects/{project_id}/export/", {"format": fmt})
        assert response.status_code == 200, response.status_code
        chunks = iter(response.streaming_content)
        first = next(chunks, b"")
        first_byte = time.perf_counter() - started
        lines = first.count(b"\n")
        for chunk in chunks:
            lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        response.close()
    cpu = time.process_time() - here_before
    alone_s, alone_cpu = query_alone(query.sql, query.params)
    return {"rows": lines, "rows_s": lines / elapsed, "first_ms": 1000 * first_byte, "rss_mb": rss.growth_mb,
            "rows_cpu_s": _per_cpu_s(lines, cpu), "alone_rows_s": lines / alone_s,
            "alone_rows_cpu_s": _per_cpu_s(lines, alone_cpu)}


def _per_cpu_s(lines: int, cpu_s: float) -> float:
    """Lines per CPU second, or nan when the CPU time is below what /proc counts reliably (0.05 s: 5 ticks)."""
    return lines / cpu_s if cpu_s >= 0.05 else float("nan")


def query_alone(sql: str, params) -> tuple[float, float]:
    """Seconds and backend CPU seconds PostgreSQL takes to run an export's query through a cursor, sending no row.

    The cursor is declared as the export declares it (inside a transaction, JIT and parallel
    workers off), so the plan is the one the export gets; MOVE ALL runs it to the end. (EXPLAIN
    ANALYZE plans for all rows, not for a cursor's first rows, and so measures another plan.)
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(f"DECLARE bench_alone NO SCROLL CURSOR FOR {sql}", params)
        cpu, started = backend_cpu_s(), time.perf_counter()
        cursor.execute("MOVE ALL IN bench_alone")
        return time.perf_counter() - started, backend_cpu_s() - cpu


def measure_snapshot(project_id: int) -> float:
    from annotation.models import Project
    from training.snapshots import snapshot_freeze, storage_path

    started = time.perf_counter()
    snapshot = snapshot_freeze(project=Project.objects.get(pk=project_id), format="preference")
    elapsed = time.perf_counter() - started
    storage_path(snapshot.path).unlink(missing_ok=True)
    snapshot.delete()
    return elapsed


def base_model():
    from training.models import ModelVersion

    model, _ = ModelVersion.objects.get_or_create(
        name="bench-scale-base", defaults={"kind": "base", "path": "bench/tiny-base", "source": "hub"}
    )
    return model


def measure_run_create(client, project_id: int) -> float:
    from training.models import TrainingRun
    from training.snapshots import storage_path

    body = {"kind": "reward", "project": project_id, "base_model": base_model().pk, "config": {"max_steps": 1}}
    started = time.perf_counter()
    response = client.post("/api/training-runs/", body, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.content[:500]
    run = TrainingRun.objects.select_related("snapshot").get(pk=response.json()["id"])
    snapshot = run.snapshot
    run.delete()
    if snapshot is not None:
        storage_path(snapshot.path).unlink(missing_ok=True)
        snapshot.delete()
    return elapsed


def cold_ms(client, url: str, repeat: int, *, before=None) -> float:
    """The best of `repeat` GETs of url, each after the cache was cleared (and `before()` ran, untimed)."""
    from django.core.cache import cache

    best = float("inf")
    for _ in range(repeat):
        cache.clear()
        if before is not None:
            before()
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        best = min(best, elapsed)
    return 1000 * best


def measure(*, project_id: int, admin, repeat: int) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(admin)
    client.get("/api/projects/")  # the first request of a process sets up the handler: not a figure
    for fmt in ("preference", "raw"):  # nor are the first export's imports and prepared lookups
        b"".join(client.get(f"/api/projects/{project_id}/export/", {"format": fmt, "until": "2000-01-01"}))
    figures = {}
    for fmt in ("preference", "raw"):
        result = measure_export(client, project_id, fmt)
        figures[f"{fmt} rows/s"] = result["rows_s"]
        figures[f"{fmt} first byte ms"] = result["first_ms"]
        figures[f"{fmt} rows"] = result["rows"]
        figures[f"{fmt} Python lines/CPU-s"] = result["rows_cpu_s"]
        figures[f"{fmt} query alone lines/s"] = result["alone_rows_s"]
        figures[f"{fmt} query alone lines/CPU-s"] = result["alone_rows_cpu_s"]
        figures["export peak RSS growth MB"] = max(figures.get("export peak RSS growth MB", 0.0), result["rss_mb"])
    figures["snapshot freeze s"] = measure_snapshot(project_id)
    figures["POST /api/training-runs/ ms"] = 1000 * min(measure_run_create(client, project_id) for _ in range(repeat))
    from annotation import dashboard as dashboard_module

    def refresh():  # what the Celery task does (a checkout from before the rollup has none: nothing to do)
        if hasattr(dashboard_module, "dashboard_figures_refresh"):
            dashboard_module.dashboard_figures_refresh(project_id=project_id)

    started = time.perf_counter()
    refresh()
    figures["dashboard rollup (Celery) s"] = time.perf_counter() - started
    dashboard = f"/projects/{project_id}/dashboard/"
    figures["dashboard cold ms"] = cold_ms(client, dashboard, repeat, before=refresh)
    figures["dashboard, no rollup yet ms"] = cold_ms(client, dashboard, repeat)
    figures["project list cold ms"] = cold_ms(client, "/", repeat)
    figures["GET /api/projects/ cold ms"] = cold_ms(client, "/api/projects/", repeat)
    return figures


def report(columns: dict[str, dict]) -> None:
    names = list(columns)
    print(f"\n{'':32}" + "".join(f"{name:>16}" for name in names) + f"{'target':>12}")
    for key, (op, target) in TARGETS.items():
        cells = []
        for name in names:
            value = columns[name][key]
            ok = "" if op is None else (" ok" if _meets(value, op, target) else " !!")
            cells.append(f"{_fmt(value)}{ok:>3}")
        goal = "" if op is None else f"{op} {target:,}"
        print(f"{key:32}" + "".join(f"{cell:>16}" for cell in cells) + f"{goal:>12}")
    rows = "".join(f"{columns[n]['preference rows']:>13,} / {columns[n]['raw rows']:,}" for n in names)
    print(f"{'(lines: preference / raw)':32}{rows}")


def _meets(value: float, op: str, target: float) -> bool:
    return {">=": value >= target, "<=": value <= target, "<": value < target}[op]


def _fmt(value: float) -> str:
    if value != value:  # nan: not measured here
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000, help="tasks of the small project")
    parser.add_argument("--big", type=int, default=1_000_000, help="tasks of the big project")
    parser.add_argument("--rebuild", action="store_true", help="build both projects again")
    parser.add_argument("--repeat", type=int, default=3, help="cold page loads per page (the best is shown)")
    args = parser.parse_args()
    os.environ.setdefault("FEEDBACKLOOP_STORAGE_ROOT", str(ROOT / "var" / f"bench-scale-{uuid.uuid4().hex[:8]}"))
    setup_django()
    labelers, admin = labelers_and_admin()
    columns = {}
    for name, tasks in ((f"{args.small:,} tasks", args.small), (f"{args.big:,} tasks", args.big)):
        project_id = project_for(slug=f"bench-scale-{tasks}", tasks=tasks, labelers=labelers, admin=admin,
                                 rebuild=args.rebuild)
        columns[name] = measure(project_id=project_id, admin=admin, repeat=args.repeat)
    report(columns)


if __name__ == "__main__":
    main()
