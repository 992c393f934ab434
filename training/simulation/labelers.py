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

The random draws depend only on (seed, labeler, what the task shows), never on thread timing or on
database ids, so a run with one labeler is exactly repeatable, and with many the share of flips is
what `noise` says. Which labeler gets which task does depend on thread timing; `in_turn=True` makes
the labelers claim one at a time, in a fixed rotation, so a whole run repeats exactly (the full loop).

A labeler may also be given a behaviour (a simulated population, `manage.py simulate --population`):

- careful: the gold judgement above;
- noisy: the gold judgement, flipped with its own probability (`noisy:0.2`);
- spammer: a random ranking and a random strength, whatever the responses say;
- position: always the first response shown best, then the others in the order shown;
- adversarial: the gold judgement inverted (noise 1).

Spammers, position-biased and adversarial labelers are the "bad" kinds a quality check must find.
A labeler who is held out by qualification (a 403 on the claim) stops, and says so.

Pure Python (no Django): it can drive any FeedbackLoop server over HTTP.
"""

from __future__ import annotations

import hashlib
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
WRITER_DRAFTS = 20  # drafts a gold writer may write before it keeps its best
WRITER_GOOD_SCORE = 1.0  # a draft the gold function rates at least this well is kept at once


class SimulationError(RuntimeError):
    """The server answered something a labeler cannot go on from."""


# Judging -------------------------------------------------------------------------------------------


def task_key(task: dict) -> str:
    """What a task shows a labeler (its messages and its responses' texts, in a canonical order), hashed.

    A rerun of a simulation has new database ids; the same prompt and responses have the same key.
    """
    shown = {"messages": task.get("messages") or [], "responses": sorted(r["text"] for r in task.get("responses") or [])}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:32]


def decision_rng(*, seed: int, labeler: str, task: str) -> random.Random:
    """The random generator of one labeler's work on one task (`task_key`): independent of thread timing."""
    return random.Random(f"{seed}:{labeler}:{task}")


def gold_ranking(*, messages: list[dict], responses: list[dict]) -> list[list[int]]:
    """Response ids grouped best first by gold score; scores closer than TIE_GAP to a group's best tie."""
    # Equal scores in text order, not display order: the same ranking whatever order a job shows.
    scored = sorted(
        ((synthetic.gold_score(messages, r["text"]), r["text"], r["id"]) for r in responses),
        key=lambda s: (-s[0], s[1]),
    )
    groups: list[list[int]] = []
    head = None
    for score, _, response_id in scored:
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
    """A gold writer's answer: a positive sentence about the prompt's topic that the gold function rates well.

    The sentence generator can repeat a word ("... always ... as always"), which the gold function
    marks down; a careful writer rereads and writes again, up to WRITER_DRAFTS times, keeping the best.
    """
    topic = synthetic.topic_of(messages)
    if not topic:
        return GENERIC_ANSWER
    best, best_score = "", float("-inf")
    for _ in range(WRITER_DRAFTS):
        draft = synthetic.make_response(rng, topic, +1)
        score = synthetic.gold_score(messages, draft)
        if score > best_score:
            best, best_score = draft, score
        if score >= WRITER_GOOD_SCORE:
            break
    return best


# Behaviours ----------------------------------------------------------------------------------------

BEHAVIOURS = ("careful", "noisy", "spammer", "position", "adversarial")
BAD_KINDS = frozenset({"spammer", "position", "adversarial"})
SPAM_STRENGTHS = ("slightly_better", "better", "much_better")
DEFAULT_FLIP = 0.2


@dataclass(frozen=True)
class Behaviour:
    """How a simulated labeler judges a comparison. `flip` is the noisy labeler's flip probability."""

    kind: str = "careful"
    flip: float = 0.0

    def __post_init__(self):
        if self.kind not in BEHAVIOURS:
            raise ValueError(f"unknown labeler kind {self.kind!r}; one of {', '.join(BEHAVIOURS)}")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"{self.kind}: the flip probability must be between 0 and 1, not {self.flip}")
        if self.kind != "noisy" and self.flip:
            raise ValueError(f"only noisy labelers take a flip probability, not {self.kind}")

    @property
    def bad(self) -> bool:
        """A kind whose labels carry no information about the gold answer (or the wrong one)."""
        return self.kind in BAD_KINDS

    @property
    def label(self) -> str:
        return f"noisy:{self.flip:g}" if self.kind == "noisy" else self.kind


def judge_as(*, behaviour: Behaviour, messages: list[dict], responses: list[dict],
             rng: random.Random) -> tuple[dict, bool]:
    """The submit body for a comparison judged with `behaviour`, and whether it departs from gold by a flip.

    The draws come from `rng` (one per labeler and task), so a judgement repeats exactly.
    """
    if behaviour.kind in ("careful", "noisy", "adversarial"):
        noise = {"careful": 0.0, "noisy": behaviour.flip, "adversarial": 1.0}[behaviour.kind]
        return judge_comparison(messages=messages, responses=responses, noise=noise, rng=rng)
    ids = [r["id"] for r in responses]
    if behaviour.kind == "spammer":
        rng.shuffle(ids)
    # position: the order shown, first best.
    body: dict = {"ranking": [[i] for i in ids]}
    if len(ids) == 2:
        body["strength"] = rng.choice(SPAM_STRENGTHS) if behaviour.kind == "spammer" else "better"
    return body, False


def mix_parse(text: str, *, flip: float = DEFAULT_FLIP) -> list[tuple[Behaviour, float]]:
    """`careful=0.7,spammer=0.15,noisy:0.3=0.15` -> [(Behaviour, share)]; shares must sum to 1.

    A noisy entry takes its flip probability after a colon, or `flip`. ValueError says what is wrong.
    """
    if not text or not text.strip():
        raise ValueError("the mix is empty: give kind=share pairs, e.g. careful=0.7,spammer=0.15,position=0.15")
    out: list[tuple[Behaviour, float]] = []
    seen: set[str] = set()
    for item in text.split(","):
        name, sep, raw_share = item.strip().partition("=")
        if not sep or not name.strip() or not raw_share.strip():
            raise ValueError(f"mix entries are kind=share, not {item.strip()!r}")
        kind, colon, raw_flip = name.strip().partition(":")
        kind = kind.strip()
        if kind not in BEHAVIOURS:
            raise ValueError(f"unknown labeler kind {kind!r} in the mix; one of {', '.join(BEHAVIOURS)}")
        if colon and kind != "noisy":
            raise ValueError(f"only noisy takes a flip probability (noisy:0.2=share), not {kind}")
        try:
            share = float(raw_share)
        except ValueError:
            raise ValueError(f"{kind}: the share must be a number, not {raw_share.strip()!r}") from None
        if not 0.0 < share <= 1.0:
            raise ValueError(f"{kind}: the share must be above 0 and at most 1, not {raw_share.strip()}")
        this_flip = 0.0
        if kind == "noisy":
            try:
                this_flip = float(raw_flip) if colon else flip
            except ValueError:
                raise ValueError(f"noisy: the flip probability must be a number, not {raw_flip!r}") from None
            if not 0.0 <= this_flip <= 1.0:
                raise ValueError(f"noisy: the flip probability must be between 0 and 1, not {this_flip:g}")
        behaviour = Behaviour(kind=kind, flip=this_flip)
        if behaviour.label in seen:
            raise ValueError(f"{behaviour.label} appears twice in the mix")
        seen.add(behaviour.label)
        out.append((behaviour, share))
    total = sum(share for _, share in out)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"the mix's shares must add up to 1, not {total:g}")
    return out


def mix_assign(mix: list[tuple[Behaviour, float]], count: int, *, seed: int = 0) -> list[Behaviour]:
    """`count` behaviours in the mix's proportions (largest remainders), in an order shuffled by `seed`.

    Every kind in the mix gets at least one labeler, or ValueError: a mix the population cannot hold.
    """
    if count < 1:
        raise ValueError("a population needs at least one labeler")
    exact = [share * count for _, share in mix]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(mix)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    empty = [mix[i][0].label for i, n in enumerate(counts) if n == 0]
    if empty:
        raise ValueError(f"{count} labelers are too few for the mix: {', '.join(empty)} would get none")
    behaviours = [b for (b, _), n in zip(mix, counts) for _ in range(n)]
    random.Random(f"mix:{seed}").shuffle(behaviours)
    return behaviours


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
    behaviour: str = "careful"


@dataclass
class LabelingResult:
    labels: int = 0
    by_kind: Counter = field(default_factory=Counter)
    flipped: int = 0
    ties: int = 0  # comparisons submitted with every response in one group
    seconds: float = 0.0
    decisions: list[Decision] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # labeler -> qualification status that stopped them

    @property
    def labels_per_second(self) -> float:
        return self.labels / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        judged = self.by_kind.get("comparison", 0)
        return {
            "labels": self.labels, "by_kind": dict(self.by_kind), "flipped": self.flipped, "ties": self.ties,
            "flip_rate": self.flipped / judged if judged else 0.0, "seconds": round(self.seconds, 3),
            "labels_per_second": round(self.labels_per_second, 2), "stopped": dict(self.stopped),
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

    def __init__(self, *, base_url: str, account: Account, noise: float, seed: int, think_seconds: float = 0.0,
                 behaviour: Behaviour | None = None, reported_ms: tuple[int, int] | None = None):
        self.client = ApiClient(base_url, account.token)
        self.username = account.username
        self.noise = noise
        self.seed = seed
        self.think_seconds = think_seconds
        self.behaviour = behaviour
        # When set, the time reported for each label is drawn from this range (a population gives each
        # behaviour the range its pace implies); else the time the judgement took here.
        self.reported_ms = reported_ms
        self.decisions: list[Decision] = []
        self.stopped: str = ""  # the qualification status of a 403 that ended the work

    def work(self, *, project_id: int, kind: str | None = None, max_labels: int | None = None) -> list[Decision]:
        try:
            while self.step(project_id=project_id, kind=kind, max_labels=max_labels):
                pass
        finally:
            self.client.close()
        return self.decisions

    def step(self, *, project_id: int, kind: str | None = None, max_labels: int | None = None) -> bool:
        """Claim and label one task. False when this labeler is done: nothing left, held out, or capped."""
        if max_labels is not None and len(self.decisions) >= max_labels:
            return False
        status, task = self.client.request("POST", f"/api/projects/{project_id}/next/" + (f"?kind={kind}" if kind else ""))
        if status == 204:
            return False
        if status == 403 and isinstance(task, dict) and isinstance(task.get("qualification"), dict):
            self.stopped = str(task["qualification"].get("status") or "held_out")
            return False
        if status != 200:
            raise SimulationError(f"{self.username}: next answered {status}: {str(task)[:500]}")
        self.decisions.append(self._label(task))
        return True

    def _label(self, task: dict) -> Decision:
        started = time.monotonic()
        rng = decision_rng(seed=self.seed, labeler=self.username, task=task_key(task))
        decision = Decision(task_id=task["id"], kind=task["kind"], labeler=self.username,
                            behaviour=self.behaviour.label if self.behaviour else "careful")
        if task["kind"] == "demonstration":
            body = {"text": write_demonstration(messages=task["messages"], rng=rng)}
        elif self.behaviour is not None:
            body, decision.flipped = judge_as(
                behaviour=self.behaviour, messages=task["messages"], responses=task["responses"], rng=rng
            )
            decision.ranking = body["ranking"]
        else:
            body, decision.flipped = judge_comparison(
                messages=task["messages"], responses=task["responses"], noise=self.noise, rng=rng
            )
            decision.ranking = body["ranking"]
        if self.think_seconds:
            time.sleep(self.think_seconds)
        body["client_id"] = str(uuid.uuid4())
        if self.reported_ms:
            body["time_spent_ms"] = rng.randint(*self.reported_ms)
        else:
            body["time_spent_ms"] = int((time.monotonic() - started) * 1000)
        status, data = self.client.request("POST", f"/api/tasks/{task['id']}/annotations/", body)
        if status not in (200, 201):
            raise SimulationError(f"{self.username}: submit on task {task['id']} answered {status}: {str(data)[:500]}")
        return decision


def _one_per_account(value, accounts: list, name: str) -> list:
    if isinstance(value, list):
        if len(value) != len(accounts):
            raise ValueError(f"give one {name} per account")
        return value
    return [value] * len(accounts)


def _label_in_turn(labelers: list[SimulatedLabeler], caps: list, *, project_id: int, kind: str | None) -> None:
    """Each labeler in order claims and labels one task, until every one of them is done."""
    active = list(zip(labelers, caps))
    try:
        while active:
            active = [(lab, cap) for lab, cap in active if lab.step(project_id=project_id, kind=kind, max_labels=cap)]
    finally:
        for labeler in labelers:
            labeler.client.close()


def label_project(
    *, base_url: str, project_id: int, accounts: list[Account], noise: float = 0.0, seed: int = 0,
    kind: str | None = None, behaviours: list[Behaviour] | None = None, reported_ms: tuple[int, int] | None = None,
    max_labels: int | list[int] | None = None, in_turn: bool = False,
) -> LabelingResult:
    """Run one thread per account until none gets a task. Raises the first labeler's error, if any.

    `in_turn=True` runs no threads: the labelers claim one task each in a fixed rotation, so who
    labels what, and so the whole result, repeats exactly from the seed (slower: no overlap).

    `behaviours` (one per account) makes a population; without it every labeler judges gold with `noise`.
    A labeler stopped by qualification (held out) ends its thread; `LabelingResult.stopped` names it.
    `max_labels` caps each labeler's labels in this call (a population's shares; call again to finish).
    `reported_ms` and `max_labels` take one value for everyone or a list with one per account.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError("noise must be between 0 and 1")
    if behaviours is not None and len(behaviours) != len(accounts):
        raise ValueError("give one behaviour per account")
    reported = _one_per_account(reported_ms, accounts, "reported_ms")
    caps = _one_per_account(max_labels, accounts, "max_labels")
    labelers = [
        SimulatedLabeler(base_url=base_url, account=a, noise=noise, seed=seed, reported_ms=reported[i],
                         behaviour=behaviours[i] if behaviours is not None else None)
        for i, a in enumerate(accounts)
    ]
    errors: list[BaseException] = []

    def run(labeler: SimulatedLabeler, cap: int | None) -> None:
        try:
            labeler.work(project_id=project_id, kind=kind, max_labels=cap)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    started = time.monotonic()
    if in_turn:
        _label_in_turn(labelers, caps, project_id=project_id, kind=kind)
    else:
        threads = [threading.Thread(target=run, args=(lab, cap), name=lab.username, daemon=True)
                   for lab, cap in zip(labelers, caps)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    result = LabelingResult(seconds=time.monotonic() - started)
    if errors:
        raise errors[0]
    for labeler in labelers:
        if labeler.stopped:
            result.stopped[labeler.username] = labeler.stopped
        for decision in labeler.decisions:
            result.decisions.append(decision)
            result.labels += 1
            result.by_kind[decision.kind] += 1
            result.flipped += decision.flipped
            result.ties += decision.kind == "comparison" and len(decision.ranking) == 1
    return result
