"""Simulated labelers: N threads, each with its own HTTP connection and API token, label a project.

Each labeler loops `POST /api/projects/{id}/next/` then `POST /api/tasks/{id}/annotations/` until
the server answers 204 (nothing left for it). They judge as the synthetic task's gold function
does (training.pipelines.synthetic):

- a demonstration gets a gold writer's answer: a positive sentence about the prompt's topic,
  varied by the labeler's random generator;
- a comparison of K responses is ranked by gold score, best first; responses whose scores differ
  by less than the smallest strength gap are tied; a pair gets the strength of its score gap
  (synthetic.gold_compare);
- with probability `noise` the judgement is flipped: the ranking is reversed (for a pair, the
  loser wins, with the same strength). At noise 1.0 every judgement is flipped, at 0.5 about half.

The random draws depend only on (seed, labeler, task), never on thread timing, so a run with one
labeler is exactly repeatable, and with many the share of flips is what `noise` says.

Pure Python (no Django): it can drive any FeedbackLoop server over HTTP.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from training.pipelines import synthetic

TIE_GAP = min(threshold for threshold, _, _ in synthetic.STRENGTHS)  # a smaller score gap is a tie
GENERIC_ANSWER = "That is a good and kind question, and here is a clear, warm answer."


class SimulationError(RuntimeError):
    """The server answered something a labeler cannot go on from."""


# Judging -------------------------------------------------------------------------------------------


def decision_rng(*, seed: int, labeler: str, task_id: int) -> random.Random:
    """The random generator of one labeler's work on one task: independent of thread timing."""
    return random.Random(f"{seed}:{labeler}:{task_id}")


def gold_ranking(*, messages: list[dict], responses: list[dict]) -> list[list[int]]:
    """Response ids grouped best first by gold score; scores closer than TIE_GAP to a group's best tie."""
    scored = sorted(
        ((synthetic.gold_score(messages, r["text"]), r["id"]) for r in responses), key=lambda s: -s[0]
    )
    groups: list[list[int]] = []
    head = None
    for score, response_id in scored:
        if head is None or head - score >= TIE_GAP:
            groups.append([response_id])
            head = score
        else:
            groups[-1].append(response_id)
    return groups


def judge_comparison(*, messages: list[dict], responses: list[dict], noise: float, rng: random.Random) -> tuple[dict, bool]:
    """The submit body for a comparison, and whether the noise flipped it."""
    ranking = gold_ranking(messages=messages, responses=responses)
    flipped = len(ranking) > 1 and rng.random() < noise
    if flipped:
        ranking = list(reversed(ranking))
    body: dict = {"ranking": ranking}
    if len(responses) == 2 and len(ranking) == 2:
        by_id = {r["id"]: r["text"] for r in responses}
        verdict = synthetic.gold_compare(messages, by_id[ranking[0][0]], by_id[ranking[1][0]])
        # The gap is the same either way round; a flipped verdict keeps its strength.
        body["strength"] = verdict["strength"] if verdict["winner"] else "slightly_better"
    return body, flipped


def write_demonstration(*, messages: list[dict], rng: random.Random) -> str:
    """A gold writer's answer: a positive sentence about the prompt's topic."""
    topic = synthetic.topic_of(messages)
    if not topic:
        return GENERIC_ANSWER
    return synthetic.make_response(rng, topic, +1)


# HTTP ----------------------------------------------------------------------------------------------


class ApiClient:
    """A keep-alive JSON client over one http.client connection, with a token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], not {base_url!r}")
        self.prefix = parts.path.rstrip("/")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = cls(parts.hostname, parts.port, timeout=timeout)
        self.token = token

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, object]:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        for attempt in (1, 2):
            try:
                self.connection.request(method, self.prefix + path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.connection.close()
                if attempt == 2:
                    raise
        if not data:
            return response.status, None
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data.decode("utf-8", "replace")

    def expect(self, method: str, path: str, body=None, *, ok=(200, 201), **kwargs):
        status, data = self.request(method, path, body, **kwargs)
        if status not in ok:
            raise SimulationError(f"{method} {path} answered {status}: {str(data)[:500]}")
        return data

    def upload(self, path: str, *, filename: str, content: bytes, field_name: str = "file"):
        """A multipart/form-data POST of one file (the import API)."""
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        raw = head + content + f"\r\n--{boundary}--\r\n".encode()
        return self.expect("POST", path, raw=raw, content_type=f"multipart/form-data; boundary={boundary}")

    def close(self) -> None:
        self.connection.close()


def token_login(*, base_url: str, username: str, password: str) -> str:
    """POST /api/auth/token/ -> the user's API token."""
    client = ApiClient(base_url)
    try:
        data = client.expect("POST", "/api/auth/token/", {"username": username, "password": password})
    finally:
        client.close()
    return data["token"]


# Labeling ------------------------------------------------------------------------------------------


@dataclass
class Decision:
    task_id: int
    kind: str
    labeler: str
    flipped: bool = False
    ranking: list = field(default_factory=list)


@dataclass
class LabelingResult:
    labels: int = 0
    by_kind: Counter = field(default_factory=Counter)
    flipped: int = 0
    ties: int = 0  # comparisons submitted with every response in one group
    seconds: float = 0.0
    decisions: list[Decision] = field(default_factory=list)

    @property
    def labels_per_second(self) -> float:
        return self.labels / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        judged = self.by_kind.get("comparison", 0)
        return {
            "labels": self.labels, "by_kind": dict(self.by_kind), "flipped": self.flipped, "ties": self.ties,
            "flip_rate": self.flipped / judged if judged else 0.0, "seconds": round(self.seconds, 3),
            "labels_per_second": round(self.labels_per_second, 2),
        }

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind.items())) or "nothing"
        return (f"{self.labels} labels in {self.seconds:.1f} s ({self.labels_per_second:.1f} labels/s): {kinds}; "
                f"{self.flipped} comparisons flipped by noise, {self.ties} all-tied")


@dataclass
class Account:
    username: str
    token: str


class SimulatedLabeler:
    """One labeler: its own connection, its own token, labeling until the server has nothing left."""

    def __init__(self, *, base_url: str, account: Account, noise: float, seed: int, think_seconds: float = 0.0):
        self.client = ApiClient(base_url, account.token)
        self.username = account.username
        self.noise = noise
        self.seed = seed
        self.think_seconds = think_seconds
        self.decisions: list[Decision] = []

    def work(self, *, project_id: int, kind: str | None = None, max_labels: int | None = None) -> list[Decision]:
        path = f"/api/projects/{project_id}/next/" + (f"?kind={kind}" if kind else "")
        try:
            while max_labels is None or len(self.decisions) < max_labels:
                status, task = self.client.request("POST", path)
                if status == 204:
                    break
                if status != 200:
                    raise SimulationError(f"{self.username}: next answered {status}: {str(task)[:500]}")
                self.decisions.append(self._label(task))
        finally:
            self.client.close()
        return self.decisions

    def _label(self, task: dict) -> Decision:
        started = time.monotonic()
        rng = decision_rng(seed=self.seed, labeler=self.username, task_id=task["id"])
        decision = Decision(task_id=task["id"], kind=task["kind"], labeler=self.username)
        if task["kind"] == "demonstration":
            body = {"text": write_demonstration(messages=task["messages"], rng=rng)}
        else:
            body, decision.flipped = judge_comparison(
                messages=task["messages"], responses=task["responses"], noise=self.noise, rng=rng
            )
            decision.ranking = body["ranking"]
        if self.think_seconds:
            time.sleep(self.think_seconds)
        body["client_id"] = str(uuid.uuid4())
        body["time_spent_ms"] = int((time.monotonic() - started) * 1000)
        status, data = self.client.request("POST", f"/api/tasks/{task['id']}/annotations/", body)
        if status not in (200, 201):
            raise SimulationError(f"{self.username}: submit on task {task['id']} answered {status}: {str(data)[:500]}")
        return decision


def label_project(
    *, base_url: str, project_id: int, accounts: list[Account], noise: float = 0.0, seed: int = 0,
    kind: str | None = None,
) -> LabelingResult:
    """Run one thread per account until none gets a task. Raises the first labeler's error, if any."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError("noise must be between 0 and 1")
    labelers = [SimulatedLabeler(base_url=base_url, account=a, noise=noise, seed=seed) for a in accounts]
    errors: list[BaseException] = []

    def run(labeler: SimulatedLabeler) -> None:
        try:
            labeler.work(project_id=project_id, kind=kind)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(lab,), name=lab.username, daemon=True) for lab in labelers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = LabelingResult(seconds=time.monotonic() - started)
    if errors:
        raise errors[0]
    for labeler in labelers:
        for decision in labeler.decisions:
            result.decisions.append(decision)
            result.labels += 1
            result.by_kind[decision.kind] += 1
            result.flipped += decision.flipped
            result.ties += decision.kind == "comparison" and len(decision.ranking) == 1
    return result
