"""The client: one method per thing a person does with the platform, each one HTTP call (or a follow loop).

    from feedbackloop_client import Client

    fl = Client("http://127.0.0.1:8000", username="ada", password="...")
    project = fl.projects.create(name="Helpfulness", overlap=2)
    fl.projects.import_file(project["id"], "prompts.jsonl")
    run = fl.runs.start(kind="sft", project=project["id"], base_model=1, config={"max_steps": 50})
    run = fl.runs.follow(run["id"])           # a progress line until it ends
    fl.exports.to_file(project["id"], "preference", "pairs.jsonl")

Errors come back as ApiError with the HTTP status and the server's message, including the field it
names (`error.field`), so a script can say what was wrong without reading the body itself.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx

from .types import Annotation, EvaluationStart, GenerationJob, Model, Project, RewardCheck, Task, TrainingRun

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class ApiError(Exception):
    """A 4xx or 5xx answer: `status`, the server's `detail`, and the `field` it names (if any)."""

    def __init__(self, status: int, detail: str, field: str | None = None, body: Any = None):
        super().__init__(f"{status}: {detail}" + (f" ({field})" if field else ""))
        self.status, self.detail, self.field, self.body = status, detail, field, body


class Client:
    """Talks to one FeedbackLoop server with an API token (given, or obtained from a username and password)."""

    def __init__(self, url: str, *, token: str | None = None, username: str | None = None,
                 password: str | None = None, timeout: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Accept": "application/json"})
        if token is None:
            if username is None or password is None:
                raise ValueError("Give a token, or a username and a password.")
            token = self._json("POST", "/api/auth/token/", json={"username": username, "password": password})["token"]
        self.http.headers["Authorization"] = f"Token {token}"
        self.token = token
        self.projects = _Projects(self)
        self.labeling = _Labeling(self)
        self.exports = _Exports(self)
        self.runs = _Runs(self)
        self.models = _Models(self)
        self.generation = _Generation(self)
        self.evaluations = _Evaluations(self)
        self.hub = _Hub(self)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Plumbing -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    def _pages(self, path: str, params: dict | None = None, page_size: int = 100) -> Iterator[dict]:
        """Every item of a paginated list ({"count", "next", "results"}), one page at a time."""
        offset = 0
        while True:
            page = self._json("GET", path, params={**(params or {}), "limit": page_size, "offset": offset})
            yield from page["results"]
            offset += len(page["results"])
            if not page.get("next") or not page["results"]:
                return


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        detail = body.get("detail")
        if detail is None:  # a serializer's {"field": ["message"]}
            field, messages = next(iter(body.items()), (None, [""]))
            detail = messages[0] if isinstance(messages, list) and messages else str(messages)
            return ApiError(response.status_code, str(detail), field, body)
        return ApiError(response.status_code, str(detail), body.get("field"), body)
    return ApiError(response.status_code, str(body)[:500] or response.reason_phrase, None, body)


class _Part:
    def __init__(self, client: Client):
        self.client = client


class _Projects(_Part):
    def list(self) -> list[Project]:
        return cast(list[Project], self.client._json("GET", "/api/projects/"))

    def get(self, project_id: int) -> Project:
        return cast(Project, self.client._json("GET", f"/api/projects/{project_id}/"))

    def create(self, *, name: str, **settings) -> Project:
        """A new project (you need the create-project permission); you become its admin."""
        return cast(Project, self.client._json("POST", "/api/projects/", json={"name": name, **settings}))

    def update(self, project_id: int, **settings) -> Project:
        return cast(Project, self.client._json("PATCH", f"/api/projects/{project_id}/", json=settings))

    def add_member(self, project_id: int, *, username: str, role: str) -> dict:
        return self.client._json("POST", f"/api/projects/{project_id}/members/",
                                 json={"username": username, "role": role})

    def import_file(self, project_id: int, path: str | Path | BinaryIO, *, mode: str = "add") -> dict:
        """Import prompts (JSONL or CSV) from a path or an open binary file; the counts, or ApiError with the bad lines."""
        if isinstance(path, (str, Path)):
            with open(path, "rb") as handle:
                return self.import_file(project_id, handle, mode=mode)
        name = Path(getattr(path, "name", "prompts.jsonl")).name
        return self.client._json("POST", f"/api/projects/{project_id}/import/",
                                 files={"file": (name, path)}, data={"mode": mode})


class _Labeling(_Part):
    def next(self, project_id: int, *, kind: str | None = None) -> Task | None:
        """Lease the next task (or get the one already leased); None when nothing is left for you."""
        response = self.client._request("POST", f"/api/projects/{project_id}/next/",
                                        params={"kind": kind} if kind else None)
        return None if response.status_code == 204 else cast(Task, response.json())

    def submit(self, task_id: int, *, client_id: str | None = None, **answer) -> Annotation:
        """Submit `text=` (a demonstration) or `ranking=` (a comparison, groups of response ids, best first).

        Idempotent on client_id: sending the same one again returns the stored annotation.
        """
        body = {"client_id": client_id or str(uuid.uuid4()), **answer}
        return cast(Annotation, self.client._json("POST", f"/api/tasks/{task_id}/annotations/", json=body))

    def skip(self, task_id: int, *, reason: str) -> Annotation:
        return cast(Annotation, self.client._json("POST", f"/api/tasks/{task_id}/skip/",
                                                  json={"reason": reason, "client_id": str(uuid.uuid4())}))


class _Exports(_Part):
    def lines(self, project_id: int, fmt: str, **filters) -> Iterator[dict]:
        """The export's rows (sft, preference or raw), streamed: constant memory whatever the size."""
        with self.client.http.stream("GET", f"/api/projects/{project_id}/export/",
                                     params={"format": fmt, **{k: _param(v) for k, v in filters.items()}}) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def counts(self, project_id: int, fmt: str, **filters) -> dict:
        """How many rows (pairs for preference) the export keeps: in all, under each filter alone, and together.

        Filters: exclude_gold, reviewed_only, exclude_flagged (bool), min_competence (0..1),
        consensus ("margin" or "weight", preference only), ties (bool, preference only).
        """
        params = {"format": fmt, **{k: _param(v) for k, v in filters.items()}}
        return cast(dict, self.client._json("GET", f"/api/projects/{project_id}/export/counts/", params=params))

    def to_file(self, project_id: int, fmt: str, path: str | Path, **filters) -> int:
        """Write the export as JSONL; returns the number of rows."""
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for row in self.lines(project_id, fmt, **filters):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        return count

    def to_dataset(self, project_id: int, fmt: str, **filters):
        """The export as a `datasets.Dataset` (pip install feedbackloop-client[datasets])."""
        from datasets import Dataset

        return Dataset.from_list(list(self.lines(project_id, fmt, **filters)))

    def hf_dataset_to(self, project_id: int, fmt: str, path: str | Path, *, license: str | None = None,
                      **filters) -> int:
        """Write the Hugging Face dataset directory (parquet + card) as a tar to `path`; returns its bytes.

        Extract it and `datasets.load_dataset(folder)` loads it (docs/datasets-and-hub.md).
        """
        params = {"format": fmt, **({"license": license} if license else {}),
                  **{k: _param(v) for k, v in filters.items()}}
        written = 0
        with self.client.http.stream("GET", f"/api/projects/{project_id}/export/dataset/", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            with open(path, "wb") as out:
                for block in response.iter_bytes():
                    out.write(block)
                    written += len(block)
        return written


class _Runs(_Part):
    def start(self, *, kind: str, project: int, base_model: int, reward_model: int | None = None,
              config: dict | None = None, data: dict | None = None) -> TrainingRun:
        """Start a run; `data` holds the quality filters of its snapshot (the export's filters)."""
        body: dict[str, Any] = {"kind": kind, "project": project, "base_model": base_model, "config": config or {}}
        if reward_model is not None:
            body["reward_model"] = reward_model
        if data:
            body["data"] = data
        return cast(TrainingRun, self.client._json("POST", "/api/training-runs/", json=body))

    def get(self, run_id: int) -> TrainingRun:
        return cast(TrainingRun, self.client._json("GET", f"/api/training-runs/{run_id}/"))

    def list(self, **params) -> Iterator[TrainingRun]:
        return cast(Iterator[TrainingRun], self.client._pages("/api/training-runs/", params))

    def cancel(self, run_id: int) -> TrainingRun:
        return cast(TrainingRun, self.client._json("POST", f"/api/training-runs/{run_id}/cancel/"))

    def resume(self, run_id: int) -> TrainingRun:
        return cast(TrainingRun, self.client._json("POST", f"/api/training-runs/{run_id}/resume/"))

    def retry(self, run_id: int) -> TrainingRun:
        return cast(TrainingRun, self.client._json("POST", f"/api/training-runs/{run_id}/retry/"))

    def follow(self, run_id: int, *, poll: float = 2.0, timeout: float | None = None, out=None) -> TrainingRun:
        """Poll the run until it ends, drawing a progress line; returns its final state (any final status)."""
        out = sys.stderr if out is None else out
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if out is not False:
                out.write("\r" + _progress_line(run))
                out.flush()
            if run["status"] in FINAL_STATUSES:
                if out is not False:
                    out.write("\n")
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout} s")
            time.sleep(poll)


def _param(value) -> str:
    """A query parameter as the API reads it (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _progress_line(run: TrainingRun, width: int = 30) -> str:
    done = int(width * (run.get("progress") or 0.0))
    loss = (run.get("metrics") or {}).get("loss") or []
    tail = f"  loss {loss[-1][1]:.4f}" if loss else ""
    return f"[{'#' * done}{'.' * (width - done)}] {run.get('step', 0)}/{run.get('total_steps') or '?'}{tail}  {run['status']}"


class _Models(_Part):
    def list(self) -> Iterator[Model]:
        return cast(Iterator[Model], self.client._pages("/api/models/"))

    def register(self, *, name: str, kind: str, path: str, project: int | None = None,
                 parent: int | None = None) -> Model:
        """A hub id, or a directory under one of the server's model roots, as a model of `project`."""
        body: dict[str, Any] = {"name": name, "kind": kind, "path": path}
        if project is not None:
            body["project"] = project
        if parent is not None:
            body["parent"] = parent
        return cast(Model, self.client._json("POST", "/api/models/", json=body))

    def reward_checks(self, project_id: int) -> list[RewardCheck]:
        """Is each reward model of the project still right? Its last check: agreement, labels, stale."""
        return cast(list[RewardCheck], self.client._json("GET", f"/api/projects/{project_id}/reward-checks/"))

    def check_reward_models(self, project_id: int) -> list[RewardCheck]:
        """Queue a check of each reward model of the project (on a gpu worker); returns the checks queued."""
        return cast(list[RewardCheck], self.client._json("POST", f"/api/projects/{project_id}/reward-checks/"))


class _Generation(_Part):
    def start(self, project_id: int, *, model_version: int, k: int = 4, prompt_count: int | None = None,
              prompt_ids: list[int] | None = None, **sampling) -> GenerationJob:
        body: dict[str, Any] = {"model_version": model_version, "k": k, **sampling}
        if prompt_count is not None:
            body["prompt_count"] = prompt_count
        if prompt_ids is not None:
            body["prompt_ids"] = prompt_ids
        return cast(GenerationJob, self.client._json("POST", f"/api/projects/{project_id}/generate/", json=body))

    def get(self, job_id: int) -> GenerationJob:
        return cast(GenerationJob, self.client._json("GET", f"/api/generation-jobs/{job_id}/"))

    def follow(self, job_id: int, *, poll: float = 2.0, timeout: float | None = None) -> GenerationJob:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (job := self.get(job_id))["status"] not in FINAL_STATUSES:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"generation job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll)
        return job


class _Evaluations(_Part):
    def start(self, *, project: int, model_a: int, model_b: int, prompt_count: int, **sampling) -> EvaluationStart:
        body = {"project": project, "model_a": model_a, "model_b": model_b, "prompt_count": prompt_count, **sampling}
        return cast(EvaluationStart, self.client._json("POST", "/api/evaluations/", json=body))

    def get(self, evaluation_id: int) -> EvaluationStart:
        return cast(EvaluationStart, self.client._json("GET", f"/api/evaluations/{evaluation_id}/"))

    def leaderboard(self, project_id: int) -> dict:
        return self.client._json("GET", f"/api/projects/{project_id}/leaderboard/")

    def battles(self, evaluation_id: int) -> Iterator[dict]:
        """The battle log: one row per judgement (model_a, model_b, winner, judge, tstamp, question_id), streamed."""
        with self.client.http.stream("GET", f"/api/evaluations/{evaluation_id}/battles/") as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)


class _Hub(_Part):
    """Pushes to the Hugging Face Hub, done by the server's workers; the token is never stored there."""

    def push_dataset(self, project_id: int, *, repo_id: str, token: str, fmt: str, license: str | None = None,
                     private: bool = True, **filters) -> dict:
        body = {"repo_id": repo_id, "token": token, "format": fmt, "private": private,
                **({"license": license} if license else {}), **filters}
        return cast(dict, self.client._json("POST", f"/api/projects/{project_id}/hub-pushes/", json=body))

    def push_model(self, model_id: int, *, repo_id: str, token: str, private: bool = True) -> dict:
        body = {"repo_id": repo_id, "token": token, "private": private}
        return cast(dict, self.client._json("POST", f"/api/models/{model_id}/hub-pushes/", json=body))

    def get(self, push_id: int) -> dict:
        return cast(dict, self.client._json("GET", f"/api/hub-pushes/{push_id}/"))

    def follow(self, push_id: int, *, poll: float = 2.0, timeout: float | None = None) -> dict:
        """Poll until the push has succeeded or failed (its `error` says why)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            push = self.get(push_id)
            if push["status"] in ("succeeded", "failed"):
                return push
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Push {push_id} is still {push['status']} after {timeout} s.")
            time.sleep(poll)
