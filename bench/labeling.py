"""Load test of the labeler API: N simulated labelers (next, then submit) against gunicorn + PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/labeling.py --labelers 32
    ... --labelers 1 --tasks 1000000 --labels 2000     # next-task service time on a big project
    ... --labelers 32 --gold-rate 0.1 --qualification  # with gold tasks, and qualification first
    ... --labelers 32 --dynamic-overlap                # comparisons that disagree get more labels
    ... --labelers 32 --comparisons                    # the same comparisons, dynamic overlap off

It builds a fresh project (overlap 2) in the database that DATABASE_URL names, starts gunicorn
(2 workers x 4 threads), and runs every labeler as a coroutine with its own keep-alive HTTP
connection. It prints throughput and p50/p95/p99 latency for next and submit, then checks the
claim invariants in the database. Not a test: figures depend on the machine.

With --gold-rate or --qualification the project also holds --gold-tasks gold comparisons, served at
that rate (and, with --qualification, first: --qualification-tasks of them, to pass at
--qualification-accuracy). The simulated labelers know the gold answers, so they all qualify. It
then also prints how many gold tasks were served, their share of the claims after qualification,
the next-task latency of gold and real claims apart, and checks the gold invariants.

With --dynamic-overlap the tasks are comparisons of two model responses in a project with dynamic
overlap on (--max-overlap, --agreement-threshold). Each simulated labeler picks the first response
with probability --first-choice (0.7: two labels disagree 42% of the time), so disagreements grow
tasks by one label each while the claim serves them. It also prints how many tasks grew and checks
that no task holds more labels than it requires or grew past the maximum.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["DJANGO_DEBUG"] = "0"


def setup_django():
    import django

    django.setup()


def build_project(
    *, labelers: int, tasks: int, overlap: int, gold: dict, dynamic: dict | None = None, comparisons: bool = False
) -> tuple[int, list[str]]:
    """A fresh project with `tasks` demonstration (or comparison) tasks, inserted in bulk with SQL."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Project

    assert connection.vendor == "postgresql", "the benchmark runs on PostgreSQL: set DATABASE_URL"
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        project = Project.objects.create(
            name=slug, slug=slug, overlap=overlap, lease_seconds=600, gold_rate=gold["rate"],
            qualification_tasks=gold["qualification_tasks"], qualification_min_accuracy=gold["qualification_accuracy"],
            **(dynamic or {}),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO annotation_prompt (project_id, messages, external_id, metadata, created_at, updated_at)
                SELECT %s, jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'Question ' || i)),
                       'q' || i, '{}'::jsonb, now(), now()
                FROM generate_series(1, %s) AS i
                """,
                [project.pk, tasks],
            )
            cursor.execute(
                """
                INSERT INTO annotation_task (project_id, prompt_id, kind, priority, required, done, status,
                                             metadata, created_at, updated_at)
                SELECT project_id, id, %s, 0, %s, 0, 'open', '{}'::jsonb, now(), now()
                FROM annotation_prompt WHERE project_id = %s ORDER BY id
                """,
                ["comparison" if comparisons else "demonstration", overlap, project.pk],
            )
            if comparisons:
                add_response_pairs(cursor, project_id=project.pk)
        add_gold_tasks(project=project, count=gold["tasks"])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE annotation_task")
    users = get_user_model()
    keys = []
    for i in range(labelers):
        user, _ = users.objects.get_or_create(username=f"bench-labeler-{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "labeler"})
        keys.append(Token.objects.get_or_create(user=user)[0].key)
    return project.pk, keys


def add_response_pairs(cursor, *, project_id: int) -> None:
    """Two model responses per prompt, shown by the prompt's comparison task in positions 0 and 1."""
    for letter in ("A", "B"):
        cursor.execute(
            """
            INSERT INTO annotation_response (prompt_id, text, source, created_at, updated_at)
            SELECT id, %s || external_id, 'model', now(), now() FROM annotation_prompt WHERE project_id = %s
            """,
            [f"Answer {letter} to ", project_id],
        )
    cursor.execute(
        """
        INSERT INTO annotation_taskresponse (task_id, response_id, position)
        SELECT t.id, r.id, ROW_NUMBER() OVER (PARTITION BY t.id ORDER BY r.id) - 1
        FROM annotation_task t JOIN annotation_response r ON r.prompt_id = t.prompt_id
        WHERE t.project_id = %s
        """,
        [project_id],
    )


def add_gold_tasks(*, project, count: int) -> None:
    """`count` gold comparisons of two responses each, the first text right, shown in a random order."""
    import random

    from annotation.models import Prompt, Response, Task, TaskResponse

    if not count:
        return
    prompts = Prompt.objects.bulk_create([
        Prompt(project=project, messages=[{"role": "user", "content": f"Gold question {i}"}], external_id=f"g{i}")
        for i in range(count)
    ])
    responses = Response.objects.bulk_create([
        Response(prompt=prompt, text=f"{answer} answer to gold question {i}", source=Response.Source.IMPORT)
        for i, prompt in enumerate(prompts) for answer in ("Right", "Wrong")
    ])
    pairs = [(responses[2 * i].pk, responses[2 * i + 1].pk) for i in range(count)]
    tasks = Task.objects.bulk_create([
        Task(project=project, prompt=prompt, kind=Task.Kind.COMPARISON, required=project.overlap, is_gold=True,
             gold={"ranking": [[right], [wrong]], "explanation": ""})
        for prompt, (right, wrong) in zip(prompts, pairs)
    ])
    rng = random.Random(0)
    links = []
    for task, pair in zip(tasks, pairs):
        first = rng.randrange(2)
        links += [TaskResponse(task=task, response_id=pair[0], position=first),
                  TaskResponse(task=task, response_id=pair[1], position=1 - first)]
    TaskResponse.objects.bulk_create(links)


def gold_answers(project_id: int) -> dict[int, list[list[int]]]:
    """{gold task id: its gold ranking}: what the simulated labelers submit, so that they qualify."""
    from annotation.models import Task

    return dict(Task.objects.filter(project_id=project_id, is_gold=True).values_list("id", "gold__ranking"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
        "--keep-alive", "30", "--log-level", "warning",
        # Each worker binds its own SO_REUSEPORT socket, so the kernel spreads keep-alive connections
        # across workers; with one shared socket the first awake worker took all 32 of them.
        "--reuse-port",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    deadline = time.time() + 30
    while time.time() < deadline:
        # Wait for every worker's socket: connections opened while only the first worker listens
        # all land on it and stay there (keep-alive), and the other worker idles for the whole run.
        if listening_sockets(port) >= workers:
            return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn did not start {workers} listening workers")


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:port (one per gunicorn worker with --reuse-port)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                count += 1
    return count


class Connection:
    """A minimal keep-alive HTTP/1.1 client: one per simulated labeler."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            data = b""
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return status, data


async def labeler(port, project_id, token, deadline, budget, stats, answers, first_choice=0.5):
    connection = Connection(port, token)
    claims = 0
    while time.perf_counter() < deadline and budget["left"] > 0:
        budget["left"] -= 1
        started = time.perf_counter()
        status, data = await connection.request("POST", f"/api/projects/{project_id}/next/")
        took = time.perf_counter() - started
        stats["next"].append(took)
        if status == 204:
            return
        if status != 200:
            stats["errors"].append((status, data[:200]))
            return
        task = json.loads(data)
        claims += 1
        body = {"client_id": str(uuid.uuid4()), "time_spent_ms": 1}
        if task["id"] in answers:  # a gold task: the simulated labeler knows its answer
            body.update(ranking=answers[task["id"]], strength="better")
            stats["gold_next"].append((claims, took))
            stats["gold_claims"].append(claims)
        elif task["kind"] == "comparison":
            first, second = (r["id"] for r in task["responses"])
            best, other = (first, second) if random.random() < first_choice else (second, first)
            body.update(ranking=[[best], [other]], strength="better")
            stats["real_next"].append((claims, took))
            stats["real_claims"].append(claims)
        else:
            body["text"] = "A simulated answer."
            stats["real_next"].append((claims, took))
            stats["real_claims"].append(claims)
        started = time.perf_counter()
        status, data = await connection.request("POST", f"/api/tasks/{task['id']}/annotations/", body)
        stats["submit"].append(time.perf_counter() - started)
        if status != 201:
            stats["errors"].append((status, data[:200]))
            return
        stats["submitted"].append(body["client_id"])


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.50):7.1f} ms  p95 {pick(0.95):7.1f} ms  p99 {pick(0.99):7.1f} ms  (n={len(values)})"


def check_invariants(project_id: int, overlap: int, submitted: list[str], max_overlap: int = 0) -> list[str]:
    from django.db.models import Count, F, Q

    from annotation.models import Annotation, GoldRecord, Task

    problems = []
    annotations = Annotation.objects.filter(task__project_id=project_id)
    real = annotations.filter(task__is_gold=False)  # a gold task has no overlap: every labeler may get it
    if max_overlap:  # dynamic overlap: each task holds at most what it requires, and requires at most the cap
        if real.values("task", "task__required").annotate(n=Count("id")).filter(n__gt=F("task__required")).exists():
            problems.append("a task has more annotations than it requires")
        if Task.objects.filter(project_id=project_id, is_gold=False, required__gt=max_overlap).exists():
            problems.append(f"a task grew past max_overlap {max_overlap}")
    elif real.values("task").annotate(n=Count("id")).filter(n__gt=overlap).exists():
        problems.append(f"a task has more than {overlap} annotations")
    if annotations.values("task", "labeler").annotate(n=Count("id")).filter(n__gt=1).exists():
        problems.append("a labeler annotated a task twice")
    stored = {str(c) for c in annotations.values_list("client_id", flat=True)}
    if not set(submitted) <= stored:
        problems.append(f"{len(set(submitted) - stored)} accepted submits are missing")
    stored_counts = Count("annotations", filter=~Q(annotations__kind="skip"))
    mismatched = Task.objects.filter(project_id=project_id).annotate(n=stored_counts).exclude(done=F("n"))
    if mismatched.exists():
        problems.append("a task's done count differs from its stored annotations")
    if Task.objects.filter(project_id=project_id, is_gold=True).exclude(status="open").exists():
        problems.append("a gold task is no longer open")
    gold = annotations.filter(task__is_gold=True)
    for record in GoldRecord.objects.filter(project_id=project_id):
        mine = gold.filter(labeler_id=record.labeler_id)
        if (record.gold_answered, record.gold_correct) != (mine.count(), mine.filter(gold_correct=True).count()):
            problems.append(f"labeler {record.labeler_id}'s gold record differs from their gold annotations")
    return problems


def overlap_report(project_id: int, overlap: int) -> None:
    """How dynamic overlap grew the tasks that labelers finished or were still labeling."""
    from django.db.models import Count

    from annotation.models import Task

    touched = Task.objects.filter(project_id=project_id, is_gold=False, done__gt=0)
    required = dict(touched.values("required").annotate(n=Count("id")).values_list("required", "n"))
    grown = sum(n for r, n in required.items() if r > overlap)
    done = touched.filter(status="done").count()
    print(f"overlap: {sum(required.values())} tasks labeled, {done} done, {grown} grew past {overlap}; "
          f"tasks by required count: {dict(sorted(required.items()))}")


def gold_report(project_id: int, stats: dict, qualification_tasks: int, elapsed: float) -> None:
    from django.db.models import Count

    from annotation.models import GoldRecord

    records = GoldRecord.objects.filter(project_id=project_id)
    statuses = dict(records.values("status").annotate(n=Count("id")).values_list("status", "n"))
    # The draw's share: gold claims among the claims made after each labeler's qualification tasks.
    after = [c for c in stats["gold_claims"] if c > qualification_tasks]
    later_claims = len(after) + sum(1 for c in stats["real_claims"] if c > qualification_tasks)
    print(f"gold   : {len(stats['gold_claims'])} gold tasks served ({len(stats['gold_claims']) / elapsed:.1f}/s), "
          f"{len(after)} of {later_claims} claims after qualification = "
          f"{100 * len(after) / max(later_claims, 1):.1f}%; qualification: {statuses}")
    # Next-task latency of gold and of real claims, each labeler's qualification (and warm-up) aside.
    later = qualification_tasks or 5
    print(f"next, gold: {percentiles([t for c, t in stats['gold_next'] if c > later])}")
    print(f"next, real: {percentiles([t for c, t in stats['real_next'] if c > later])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labelers", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=5000, help="tasks in the project")
    parser.add_argument("--labels", type=int, default=0, help="stop after this many next calls (0: until done)")
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60, help="stop after this long")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--gold-rate", type=float, default=0.0, help="share of claims that serve a gold task")
    parser.add_argument("--qualification", action="store_true", help="labelers qualify on gold tasks first")
    parser.add_argument("--qualification-tasks", type=int, default=5, help="gold answers to qualify (N)")
    parser.add_argument("--qualification-accuracy", type=float, default=0.8, help="share right to qualify (X)")
    parser.add_argument("--dynamic-overlap", action="store_true",
                        help="comparison tasks in a project with dynamic overlap; labelers disagree at random")
    parser.add_argument("--comparisons", action="store_true",
                        help="comparison tasks of two responses instead of demonstrations (implied by --dynamic-overlap)")
    parser.add_argument("--max-overlap", type=int, default=3, help="dynamic overlap's maximum")
    parser.add_argument("--agreement-threshold", type=float, default=0.6, help="dynamic overlap's threshold")
    parser.add_argument("--first-choice", type=float, default=0.7,
                        help="with --dynamic-overlap: the chance that a labeler picks the first response")
    parser.add_argument("--gold-tasks", type=int, default=0,
                        help="gold comparisons in the project (default: 500 with a gold rate or qualification)")
    args = parser.parse_args()
    with_gold = args.gold_rate > 0 or args.qualification
    gold = {
        "rate": args.gold_rate,
        "tasks": args.gold_tasks or (500 if with_gold else 0),
        "qualification_tasks": args.qualification_tasks if args.qualification else 0,
        "qualification_accuracy": args.qualification_accuracy,
    }

    dynamic = (
        {"dynamic_overlap": True, "max_overlap": args.max_overlap, "agreement_threshold": args.agreement_threshold}
        if args.dynamic_overlap else None
    )

    setup_django()
    project_id, tokens = build_project(
        labelers=args.labelers, tasks=args.tasks, overlap=args.overlap, gold=gold, dynamic=dynamic,
        comparisons=args.comparisons or args.dynamic_overlap,
    )
    answers = gold_answers(project_id)
    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads)
    stats = {"next": [], "submit": [], "submitted": [], "errors": [], "gold_next": [], "real_next": [],
             "gold_claims": [], "real_claims": []}
    budget = {"left": args.labels or 10**12}
    try:
        async def run_all():
            deadline = time.perf_counter() + args.seconds
            await asyncio.gather(*(
                labeler(port, project_id, t, deadline, budget, stats, answers, args.first_choice) for t in tokens
            ))

        # Warm up each gunicorn worker's connection and caches, then measure.
        started = time.perf_counter()
        asyncio.run(run_all())
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)

    labels = len(stats["submitted"])
    print(f"labelers={args.labelers} tasks={args.tasks} overlap={args.overlap} "
          f"gunicorn={args.workers}x{args.threads}"
          + (f" gold_rate={gold['rate']} gold_tasks={gold['tasks']} qualification_tasks={gold['qualification_tasks']}"
             if with_gold else "")
          + (f" dynamic_overlap max={args.max_overlap} threshold={args.agreement_threshold}" if dynamic else "")
          + (f" comparisons first_choice={args.first_choice}" if dynamic or args.comparisons else ""))
    print(f"labels: {labels} in {elapsed:.1f} s = {labels / elapsed:.1f} labels/s")
    print(f"next   : {percentiles(stats['next'])}")
    print(f"submit : {percentiles(stats['submit'])}")
    if with_gold:
        gold_report(project_id, stats, gold["qualification_tasks"], elapsed)
    if dynamic or args.comparisons:
        overlap_report(project_id, args.overlap)
    if stats["errors"]:
        print(f"errors : {len(stats['errors'])}, first: {stats['errors'][0]}")
    problems = check_invariants(project_id, args.overlap, stats["submitted"], args.max_overlap if dynamic else 0)
    print("invariants: " + ("OK" if not problems else "; ".join(problems)))
    sys.exit(1 if problems or stats["errors"] else 0)


if __name__ == "__main__":
    main()
