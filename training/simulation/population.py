"""The population experiment: can the platform's quality checks keep bad labelers out of a reward model?

    manage.py simulate --population [--mix careful=0.7,spammer=0.15,position=0.15] [--labelers 20]
                       [--overlap 3] [--gold-rate 0.1] [--qualification N:X] [--small] [--report-dir DIR]

Everything the labelers do goes through the real HTTP API (labelers.py), so gold tasks and
qualification apply to them as to people. The stages:

  services     a web server (gunicorn), unless --base-url names one
  base model   the tiny model, built and registered if missing
  tasks        synthetic comparison pairs whose gold answer the synthetic task's gold function
               decides; the gold tasks are imported with their known answers
  projects     two projects with the same tasks: "population" (the mix) and "clean" (every
               labeler careful), each labeled to overlap N by the same number of labelers
  labeling     each labeler works at its behaviour's pace (`paces`, labels in the time a careful
               labeler gives one: a spammer clicks without reading, 3; a position-biased labeler
               reads only the first response, 2; everyone else 1). Its share of the labels and
               the time it reports follow that pace, as in a pool that pays per label
  reliability  the quality run the Celery task runs (annotation.reliability.store.quality_run)
  flags        a labeler counts as flagged when the quality run flags them (position bias,
               outlier, habitually fast), when their Dawid-Skene competence is below
               --min-competence, or when qualification held them out; the truth is the mix's bad
               kinds (spammer, position, adversarial). Precision and recall of that call.
  exports      preference exports (annotation.exporters with annotation.export_filters): clean,
               unfiltered, filtered (flagged annotations and labelers below the competence
               threshold left out) and weighted (one Dawid-Skene pair per task, its confidence
               as the weight of the pair's loss)
  reward       reward models per export (one per seed, `reward_seeds`), the same steps and settings
               for each, scored on one set of held-out gold pairs whose topics no training task
               has (population_rm.py); an export's figure is the mean over its seeds

The report (report.json, table.txt, report.html) goes to --report-dir, by default
var/reports/population-<timestamp>/.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from annotation.models import GoldRecord, Project
from training import services as training_services
from training.pipelines import synthetic
from training.registry import model_location

from . import labelers, processes
from . import services as sim_services
from .overrides import settings_with_overrides

DEFAULT_MIX = "careful=0.7,spammer=0.15,position=0.15"
DEFAULT_FLIP = labelers.DEFAULT_FLIP
REPORTED_MS = (4000, 12000)  # a careful labeler's time per label; a faster pace divides it
DEFAULT_PACES = {"spammer": 3.0, "position": 2.0}  # labels per careful label; any other behaviour 1
RM_TIMEOUT = 1800
REST_PASSES = 5  # labeling passes after the shares, each until no labeler gets a task
TARGETS = {"flag_precision": 0.9, "flag_recall": 0.9, "filtered_gap": 0.03, "unfiltered_loss": 0.1}
# Accuracies are k/n: 0.9667 - 0.9367 is 9 pairs in 300, exactly 0.03, but 0.03000000000000014 in floats.
EPSILON = 1e-9


class PopulationError(RuntimeError):
    """A stage of the experiment failed; the message says which and why."""


@dataclass
class PopulationConfig:
    """The experiment's knobs; `--set name=value` overrides any (a dict field takes `reward.max_steps=50`)."""

    labelers: int = 20
    mix: str = DEFAULT_MIX
    flip: float = DEFAULT_FLIP
    overlap: int = 3
    tasks: int = 300                 # real comparison tasks (pairs)
    gold_tasks: int = 40             # gold comparison tasks, imported with their answers
    gold_rate: float = 0.1
    qualification_tasks: int = 0     # N of --qualification N:X; 0 is off
    qualification_min_accuracy: float = 0.8
    heldout_pairs: int = 300         # gold pairs of the held-out topics, for every reward model
    heldout_topics: int = 4          # topics that no training task uses
    min_competence: float = 0.7      # Dawid-Skene competence below which a labeler counts as flagged
    seed: int = 0
    reward_seeds: int = 3            # each export trains this many reward models (seeds); their mean counts
    paces: dict = field(default_factory=lambda: dict(DEFAULT_PACES))  # `--set paces.spammer=1` for equal shares
    reward: dict = field(default_factory=lambda: {
        "max_steps": 50, "batch_size": 16, "learning_rate": 5e-4, "warmup_steps": 10, "logging_steps": 10,
        "max_length": 48,
    })


SMALL = {
    "labelers": 5, "mix": "careful=0.6,spammer=0.2,position=0.2", "tasks": 24, "gold_tasks": 6,
    "heldout_pairs": 24, "overlap": 3, "reward_seeds": 1,
    "reward": {"max_steps": 3, "batch_size": 8, "learning_rate": 5e-4, "logging_steps": 1, "max_length": 48},
}


def population_config(*, small: bool = False, overrides: list[str] | None = None) -> PopulationConfig:
    """The full (or --small) configuration with `name=value` overrides. ValueError on a bad one."""
    return settings_with_overrides(
        PopulationConfig(), small=SMALL if small else None, overrides=overrides, what="population"
    )


def pace_shares(*, config: PopulationConfig, behaviours: list[labelers.Behaviour]) -> tuple[list[int], list[tuple]]:
    """Each labeler's share of the labels and the range of times it reports, from its behaviour's pace.

    The shares split the labels the tasks need (with the gold claims and qualification on top) in
    proportion to pace; a labeler at pace 3 reports a third of a careful labeler's time.
    """
    paces = [float(config.paces.get(b.kind, 1.0)) for b in behaviours]
    needed = config.tasks * config.overlap / max(0.05, 1.0 - config.gold_rate)
    shares = [math.ceil(needed * pace / sum(paces)) + config.qualification_tasks for pace in paces]
    reported = [(round(REPORTED_MS[0] / pace), round(REPORTED_MS[1] / pace)) for pace in paces]
    return shares, reported


def qualification_parse(text: str) -> tuple[int, float]:
    """`5:0.8` -> (5, 0.8): N gold answers, at least X of them right. ValueError says what is wrong."""
    raw_n, sep, raw_x = (text or "").partition(":")
    try:
        n = int(raw_n)
        x = float(raw_x) if sep else 0.8
    except ValueError:
        raise ValueError(f"--qualification takes N:X, e.g. 5:0.8, not {text!r}") from None
    if not 1 <= n <= 1000:
        raise ValueError("--qualification: N must be between 1 and 1000")
    if not 0.0 <= x <= 1.0:
        raise ValueError("--qualification: X must be between 0 and 1")
    return n, x


def config_check(config: PopulationConfig) -> list[labelers.Behaviour]:
    """The population's behaviours, after checking the config's ranges. ValueError names the setting."""
    mix = labelers.mix_parse(config.mix, flip=config.flip)
    if not 1 <= config.labelers <= sim_services.MAX_LABELERS:
        raise ValueError(f"--labelers must be between 1 and {sim_services.MAX_LABELERS}")
    if not 1 <= config.overlap <= config.labelers:
        raise ValueError(f"--overlap must be between 1 and the number of labelers ({config.labelers})")
    if not 0.0 <= config.gold_rate <= 1.0:
        raise ValueError("--gold-rate must be between 0 and 1")
    if not 1 <= config.heldout_topics < len(synthetic.TOPICS):
        raise ValueError(f"heldout_topics must be between 1 and {len(synthetic.TOPICS) - 1}")
    if config.tasks < 1 or config.heldout_pairs < 1 or config.gold_tasks < 0:
        raise ValueError("tasks and heldout_pairs must be at least 1, gold_tasks at least 0")
    if not 1 <= config.reward_seeds <= 10:
        raise ValueError("reward_seeds must be between 1 and 10")
    for kind, pace in config.paces.items():
        if kind not in labelers.BEHAVIOURS:
            raise ValueError(f"paces.{kind}: not a behaviour; one of {', '.join(labelers.BEHAVIOURS)}")
        if isinstance(pace, bool) or not isinstance(pace, (int, float)) or not 0.1 <= pace <= 10:
            raise ValueError(f"paces.{kind} must be a number from 0.1 to 10")
    if config.qualification_tasks > config.gold_tasks:
        raise ValueError(f"qualification asks for {config.qualification_tasks} gold answers, but the project has "
                         f"{config.gold_tasks} gold tasks (--set gold_tasks=...)")
    return labelers.mix_assign(mix, config.labelers, seed=config.seed)


# Tasks ---------------------------------------------------------------------------------------------


def topic_split(*, seed: int, heldout: int) -> tuple[list[str], list[str]]:
    """(training topics, held-out topics): no training task is about a held-out topic."""
    topics = list(synthetic.TOPICS)
    random.Random(f"topics:{seed}").shuffle(topics)
    return sorted(topics[heldout:]), sorted(topics[:heldout])


def gold_pairs(n: int, *, seed: int, topics: list[str]) -> list[dict]:
    """n synthetic pairs {"messages", "better", "worse", "margin"} the gold function separates (no ties)."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        topic = rng.choice(topics)
        messages = [{"role": "user", "content": rng.choice(synthetic.PROMPT_TEMPLATES).format(topic=topic)}]
        a, b = synthetic.candidate(rng, topic), synthetic.candidate(rng, topic)
        if not a.strip() or not b.strip() or a == b:
            continue  # the import takes no empty response, nor the same one twice
        verdict = synthetic.gold_compare(messages, a, b)
        if verdict["winner"] is None:
            continue
        better, worse = (a, b) if verdict["winner"] == "a" else (b, a)
        out.append({"messages": messages, "better": better, "worse": worse, "margin": verdict["margin"]})
    return out


def import_lines(*, tasks: list[dict], gold: list[dict], seed: int) -> list[str]:
    """JSONL for the import API. The better response's place in the file is drawn, so file order tells nothing;
    gold lines are mixed into the real ones (a block of ids of their own would give them away)."""
    rng = random.Random(f"import:{seed}")
    lines = []
    for prefix, items in (("task", tasks), ("gold", gold)):
        for i, item in enumerate(items):
            better_first = rng.random() < 0.5
            responses = [item["better"], item["worse"]] if better_first else [item["worse"], item["better"]]
            line = {"id": f"{prefix}-{i:05d}", "messages": item["messages"], "responses": responses,
                    "metadata": {"population": prefix}}
            if prefix == "gold":
                line["gold"] = {"ranking": [[0], [1]] if better_first else [[1], [0]]}
            lines.append(line)
    rng.shuffle(lines)
    return [json.dumps(line) for line in lines]


def heldout_rows(pairs: list[dict]) -> list[str]:
    """The held-out pairs in the preference format the reward pipeline reads."""
    return [json.dumps({"prompt": p["messages"], "chosen": [{"role": "assistant", "content": p["better"]}],
                        "rejected": [{"role": "assistant", "content": p["worse"]}], "margin": p["margin"]})
            for p in pairs]


# Flags ---------------------------------------------------------------------------------------------


def flag_calls(*, behaviours: dict[str, str], report_rows: list[dict], held_out: set[str],
               min_competence: float) -> list[dict]:
    """One row per labeler: their kind, whether the mix made them bad, whether the platform flagged them, and why.

    behaviours: {username: behaviour label}; report_rows: the quality report's `labelers`;
    held_out: usernames that qualification held out.
    """
    by_name = {row["username"]: row for row in report_rows}
    rows = []
    for username, label in sorted(behaviours.items(), key=lambda item: _natural(item[0])):
        row = by_name.get(username, {})
        reasons = sorted({str(flag["reason"]) for flag in row.get("flags", [])})
        competence = row.get("dawid_skene")
        sources = ["quality flags"] if reasons else []
        if competence is not None and competence < min_competence:
            reasons.append(f"competence {competence:.2f} < {min_competence:g}")
            sources.append("competence")
        if username in held_out:
            reasons.append("held out by qualification")
            sources.append("qualification")
        rows.append({
            "username": username, "behaviour": label, "bad": labelers.Behaviour(*_kind_flip(label)).bad,
            "flagged": bool(reasons), "reasons": reasons, "sources": sources, "judgments": row.get("judgments", 0),
            "dawid_skene": competence, "mace": row.get("mace"),
            "gold_judgments": row.get("gold_judgments", 0), "gold_agreeing": row.get("gold_agreeing", 0),
        })
    return rows


def precision_recall(rows: list[dict]) -> dict:
    """Precision and recall of `flagged` against `bad` (None where undefined: nothing flagged, or nobody bad)."""
    tp = sum(r["flagged"] and r["bad"] for r in rows)
    fp = sum(r["flagged"] and not r["bad"] for r in rows)
    fn = sum(not r["flagged"] and r["bad"] for r in rows)
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "true_negatives": sum(not r["flagged"] and not r["bad"] for r in rows),
    }


def precision_recall_by_source(rows: list[dict]) -> dict:
    """Precision and recall of each way of being caught on its own: quality flags, competence, qualification."""
    return {
        source: precision_recall([{**r, "flagged": source in r["sources"]} for r in rows])
        for source in ("quality flags", "competence", "qualification")
    }


def _kind_flip(label: str) -> tuple[str, float]:
    kind, _, flip = label.partition(":")
    return kind, float(flip) if flip else 0.0


def _natural(name: str):
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


# Exports -------------------------------------------------------------------------------------------


def export_variants(*, population: Project, clean: Project, min_competence: float) -> dict[str, tuple]:
    """{variant: (project, ExportFilters or None, description)}: the exports the reward models train on."""
    from annotation.export_filters import ExportFilters

    return {
        "clean": (clean, None, "the clean population's export (every labeler careful)"),
        "unfiltered": (population, None, "the population's export, as it is"),
        "filtered": (population, ExportFilters(exclude_flagged=True, min_competence=min_competence),
                     f"flagged annotations and labelers below competence {min_competence:g} left out"),
        "weighted": (population, ExportFilters(consensus="weight"),
                     "one Dawid-Skene consensus pair per task, its confidence as the loss weight"),
    }


def export_write(*, project: Project, filters, path: Path) -> tuple[int, int]:
    """Write the project's preference export (with `filters`) to path; return (rows, rows gold disagrees with)."""
    from annotation import exporters

    rows = wrong = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in exporters.export_lines(project=project, fmt="preference", filters=filters):
            handle.write(line)
            rows += 1
            row = json.loads(line)
            chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
            wrong += synthetic.gold_score(row["prompt"], chosen) < synthetic.gold_score(row["prompt"], rejected)
    return rows, wrong


# The run -------------------------------------------------------------------------------------------


@dataclass
class PopulationOutcome:
    report_dir: Path
    report_path: Path
    table: str
    data: dict


class Experiment:
    def __init__(self, *, config: PopulationConfig, behaviours: list[labelers.Behaviour], report_dir: Path,
                 base_url: str | None, out=None):
        self.config = config
        self.behaviours = behaviours
        self.report_dir = report_dir
        self.base_url = base_url
        self.out = out or sys.stdout
        self.children: list[processes.Child] = []
        self.stages: list[dict] = []
        self.started = time.monotonic()
        self.data: dict = {"config": dataclasses.asdict(config), "projects": {}, "labeling": {}}
        self.client: labelers.ApiClient | None = None

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @contextmanager
    def stage(self, name: str):
        entry = {"name": name, "seconds": 0.0, "status": "running", "detail": ""}
        self.stages.append(entry)
        self.say(f"[{time.monotonic() - self.started:7.1f}s] {name} ...")
        started = time.monotonic()
        try:
            yield entry
        except BaseException as exc:
            entry.update(status="failed", seconds=time.monotonic() - started, detail=str(exc).splitlines()[0][:300]
                         if str(exc) else type(exc).__name__)
            raise
        entry.update(status="succeeded", seconds=round(time.monotonic() - started, 1))
        self.say(f"[{time.monotonic() - self.started:7.1f}s] {name}: {entry['seconds']:.1f}s {entry['detail']}")

    def run(self) -> None:
        cfg = self.config
        with self.stage("services") as stage:
            if self.base_url is None:
                web = processes.web_server_start(log_dir=self.report_dir / "logs")
                self.children.append(web)
                self.base_url = web.url
            stage["detail"] = f"web server at {self.base_url}"
        with self.stage("base model") as stage:
            base = training_services.base_model_bootstrap()
            self.base_model_dir = str(model_location(base))
            stage["detail"] = f"{base.name} at {self.base_model_dir}"
        self.client = labelers.ApiClient(self.base_url, sim_services.sim_admin_ensure().token, timeout=300)

        with self.stage("tasks") as stage:
            train_topics, heldout_topics = topic_split(seed=cfg.seed, heldout=cfg.heldout_topics)
            tasks = gold_pairs(cfg.tasks, seed=cfg.seed * 1000 + 1, topics=train_topics)
            gold = gold_pairs(cfg.gold_tasks, seed=cfg.seed * 1000 + 2, topics=train_topics)
            heldout = gold_pairs(cfg.heldout_pairs, seed=cfg.seed * 1000 + 3, topics=heldout_topics)
            self.lines = import_lines(tasks=tasks, gold=gold, seed=cfg.seed)
            self.heldout_file = self.report_dir / "data" / "heldout.jsonl"
            self.heldout_file.parent.mkdir(parents=True, exist_ok=True)
            self.heldout_file.write_text("\n".join(heldout_rows(heldout)) + "\n")
            self.data["topics"] = {"training": train_topics, "heldout": heldout_topics}
            stage["detail"] = (f"{len(tasks)} pairs and {len(gold)} gold pairs on {len(train_topics)} topics; "
                               f"{len(heldout)} held-out pairs on {', '.join(heldout_topics)}")

        careful = [labelers.Behaviour("careful")] * cfg.labelers
        self.projects: dict[str, Project] = {}
        for name, behaviours in (("population", self.behaviours), ("clean", careful)):
            self.label_project(name=name, behaviours=behaviours)
        self.client.close()
        self.stop_children()  # the labeling is over: give the web server's CPU to the reward models

        with self.stage("reliability") as stage:
            from annotation.reliability import store

            outcome = store.quality_run(project_id=self.projects["population"].pk)
            report = store.quality_status(project_id=self.projects["population"].pk)["report"]
            if report is None:
                raise PopulationError(f"The quality run answered {outcome!r} and left no report.")
            self.quality = report
            stage["detail"] = (f"{report['judgments']} judgments of {report['tasks']} tasks, "
                               f"{report['models']['known_tasks']} known answers, flags {report['flag_counts']}")

        with self.stage("flags") as stage:
            project = self.projects["population"]
            held = set(GoldRecord.objects.filter(project=project, status=GoldRecord.Status.HELD_OUT)
                       .values_list("labeler__username", flat=True))
            rows = flag_calls(behaviours={a.username: b.label for a, b in zip(self.accounts, self.behaviours)},
                              report_rows=self.quality["labelers"], held_out=held,
                              min_competence=cfg.min_competence)
            self.data["flags"] = {"labelers": rows, **precision_recall(rows), "held_out": sorted(held, key=_natural),
                                  "by_source": precision_recall_by_source(rows),
                                  "min_competence": cfg.min_competence,
                                  "flag_counts": self.quality.get("flag_counts")}
            f = self.data["flags"]
            stage["detail"] = (f"precision {_fmt(f['precision'])}, recall {_fmt(f['recall'])} "
                               f"({f['true_positives']} TP, {f['false_positives']} FP, {f['false_negatives']} FN); "
                               f"{len(held)} held out by qualification")

        with self.stage("exports") as stage:
            variants = export_variants(population=self.projects["population"], clean=self.projects["clean"],
                                       min_competence=cfg.min_competence)
            self.export_files = {}
            self.data["exports"] = {}
            for name, (project, filters, description) in variants.items():
                path = self.report_dir / "data" / f"{name}.jsonl"
                rows, wrong = export_write(project=project, filters=filters, path=path)
                self.export_files[name] = str(path)
                self.data["exports"][name] = {"rows": rows, "wrong": wrong, "project": project.slug,
                                              "description": description,
                                              "filters": filters.as_dict() if filters is not None else {}}
            stage["detail"] = ", ".join(f"{k} {v['rows']} rows ({v['wrong']} against gold)"
                                        for k, v in self.data["exports"].items())

        with self.stage("reward models") as stage:
            self.data["reward_models"] = self.reward_models()
            stage["detail"] = ", ".join(f"{k} {_fmt(v.get('gold_accuracy'))}"
                                        for k, v in self.data["reward_models"].items())

    def label_project(self, *, name: str, behaviours: list[labelers.Behaviour]) -> None:
        cfg = self.config
        with self.stage(f"project {name}") as stage:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            slug = f"population-{name}-{stamp}-{timezone.now().microsecond:06d}"
            body = self.client.expect("POST", "/api/projects/", {
                "name": f"Population {name} {stamp}", "slug": slug, "overlap": cfg.overlap,
                "guidelines": "Pick the response that is the more positive sentence about the topic.",
            })
            self.client.expect("PATCH", f"/api/projects/{body['id']}/", {
                "gold_rate": cfg.gold_rate, "qualification_tasks": cfg.qualification_tasks,
                "qualification_min_accuracy": cfg.qualification_min_accuracy,
            })
            imported = self.client.upload(f"/api/projects/{body['id']}/import/", filename=f"{name}.jsonl",
                                          content=("\n".join(self.lines) + "\n").encode())
            project = Project.objects.get(pk=body["id"])
            self.projects[name] = project
            accounts = sim_services.sim_labelers_ensure(project=project, count=cfg.labelers, prefix="sim-pop")
            if name == "population":
                self.accounts = accounts
            self.data["projects"][name] = {"id": project.pk, "slug": slug, "created_tasks": imported["created_tasks"]}
            stage["detail"] = f"{slug}: {imported['created_tasks']} tasks"
        with self.stage(f"labeling {name}") as stage:
            # Shares by pace first (which thread the server answers first is chance), then whatever is left.
            # A share counts the gold claims too: about gold_rate of a labeler's claims, and N to qualify.
            shares, reported = pace_shares(config=cfg, behaviours=behaviours)
            first = labelers.label_project(
                base_url=self.base_url, project_id=project.pk, accounts=accounts, seed=cfg.seed,
                behaviours=behaviours, reported_ms=reported, max_labels=shares,
            )
            # Then whatever is left, until a pass labels nothing: a labeler ends when the server has no
            # task for it, and a label that grows a task's overlap afterwards (a disagreement) can
            # reopen work that only the labelers who already ended could do.
            parts, stopped = [first], dict(first.stopped)
            for _ in range(REST_PASSES):
                going = [i for i, a in enumerate(accounts) if a.username not in stopped]
                part = labelers.label_project(
                    base_url=self.base_url, project_id=project.pk, accounts=[accounts[i] for i in going],
                    seed=cfg.seed, behaviours=[behaviours[i] for i in going],
                    reported_ms=[reported[i] for i in going],
                )
                parts.append(part)
                stopped.update(part.stopped)
                if not part.labels:
                    break
            rest = labelers.LabelingResult(labels=sum(part.labels for part in parts[1:]))
            share = max(shares)
            result = labelers.LabelingResult(seconds=sum(part.seconds for part in parts), stopped=stopped)
            for part in parts:
                result.labels += part.labels
                result.by_kind.update(part.by_kind)
                result.decisions += part.decisions
                result.flipped += part.flipped
                result.ties += part.ties
            per_labeler = Counter(d.labeler for d in result.decisions)
            by_behaviour = Counter()
            for account, behaviour in zip(accounts, behaviours):
                by_behaviour[behaviour.label] += per_labeler.get(account.username, 0)
            self.data["labeling"][name] = {**result.as_dict(), "share_cap": share, "after_cap": rest.labels,
                                           "labels_by_behaviour": dict(by_behaviour),
                                           "labels_per_labeler": dict(per_labeler)}
            stage["detail"] = (result.summary().split(":")[0] + f"; {rest.labels} after the shares (up to {share}); "
                               + ", ".join(f"{k} {v}" for k, v in sorted(by_behaviour.items()))
                               + (f"; stopped by qualification: {len(result.stopped)}" if result.stopped else ""))

    def reward_models(self) -> dict:
        work = self.report_dir / "reward"
        work.mkdir(parents=True, exist_ok=True)
        rm_config = {
            "base_model": self.base_model_dir, "heldout": str(self.heldout_file), "work_dir": str(work),
            "seeds": [self.config.seed + i for i in range(self.config.reward_seeds)], "reward": self.config.reward,
            "variants": self.export_files,
            "output": str(work / "results.json"),
        }
        (work / "config.json").write_text(json.dumps(rm_config, indent=2))
        log = self.report_dir / "logs" / "reward.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as handle:
            done = subprocess.run(
                [sys.executable, "-m", "training.simulation.population_rm", "--config", str(work / "config.json")],
                cwd=settings.BASE_DIR, env=training_services.pipeline_env(), stdout=handle, stderr=subprocess.STDOUT,
                timeout=RM_TIMEOUT, check=False,
            )
        if done.returncode != 0:
            tail = log.read_text()[-2000:]
            raise PopulationError(f"The reward models failed (exit status {done.returncode}); see {log}:\n{tail}")
        return json.loads((work / "results.json").read_text())

    def stop_children(self) -> None:
        while self.children:
            self.children.pop().stop()

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.stop_children()

    def result(self, error: str | None) -> dict:
        data = dict(self.data)
        data["stages"] = self.stages
        data["total_seconds"] = round(time.monotonic() - self.started, 1)
        data["error"] = error
        data["summary"] = summary(data)
        return data


def summary(data: dict) -> dict:
    """The headline numbers and the targets, each with whether it was met."""
    flags = data.get("flags") or {}
    models = data.get("reward_models") or {}
    acc = {name: (m or {}).get("gold_accuracy") for name, m in models.items()}
    clean = acc.get("clean")
    best_name = None
    best_gap = None
    for name in ("filtered", "weighted"):
        if acc.get(name) is not None and clean is not None:
            gap = clean - acc[name]
            if best_gap is None or gap < best_gap:
                best_name, best_gap = name, gap
    loss = clean - acc["unfiltered"] if clean is not None and acc.get("unfiltered") is not None else None
    targets = {
        "flag precision": (flags.get("precision"), f">= {TARGETS['flag_precision']}",
                           (flags.get("precision") or 0) >= TARGETS["flag_precision"] - EPSILON),
        "flag recall": (flags.get("recall"), f">= {TARGETS['flag_recall']}",
                        (flags.get("recall") or 0) >= TARGETS["flag_recall"] - EPSILON),
        f"clean - {best_name or 'filtered'} gold accuracy": (
            best_gap, f"<= {TARGETS['filtered_gap']}",
            best_gap is not None and best_gap <= TARGETS["filtered_gap"] + EPSILON),
        "clean - unfiltered gold accuracy": (loss, f">= {TARGETS['unfiltered_loss']}",
                                             loss is not None and loss >= TARGETS["unfiltered_loss"] - EPSILON),
    }
    return {"gold_accuracy": acc, "filtered_gap": best_gap, "filtered_best": best_name, "unfiltered_loss": loss,
            "targets": targets}


def per_seed(model: dict) -> str:
    """A variant's accuracy per seed, "0.83 0.86 0.85" (one seed: "-")."""
    values = model.get("gold_accuracies") or []
    return " ".join(_fmt(v) for v in values) if len(values) > 1 else "-"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table_text(data: dict) -> str:
    cfg = data.get("config") or {}
    s = data.get("summary") or summary(data)
    lines = [
        f"Population experiment: {cfg.get('labelers')} labelers, mix {cfg.get('mix')}, overlap {cfg.get('overlap')}, "
        f"gold rate {cfg.get('gold_rate')}, qualification "
        + (f"{cfg.get('qualification_tasks')}:{cfg.get('qualification_min_accuracy')}"
           if cfg.get("qualification_tasks") else "off")
        + (", paces " + ", ".join(f"{k} {v:g}" for k, v in sorted(cfg["paces"].items())) if cfg.get("paces") else "")
        + f", total {_fmt(data.get('total_seconds'))} s",
        "",
        f"{'stage':<22}{'seconds':>9}  {'status':<10} detail",
    ]
    for st in data.get("stages") or []:
        lines.append(f"{st['name']:<22}{st['seconds']:>9.1f}  {st['status']:<10} {st['detail'][:140]}")
    flags = data.get("flags") or {}
    if flags.get("labelers"):
        lines += ["", f"{'labeler':<16}{'behaviour':<13}{'bad':<5}{'judged':>7}{'DS':>7}{'gold':>8}  flagged because"]
        for r in flags["labelers"]:
            gold = f"{r['gold_agreeing']}/{r['gold_judgments']}"
            lines.append(f"{r['username']:<16}{r['behaviour']:<13}{'yes' if r['bad'] else 'no':<5}{r['judgments']:>7}"
                         f"{_fmt(r['dawid_skene']):>7}{gold:>8}  {'; '.join(r['reasons']) or '-'}")
        lines.append(f"flag precision {_fmt(flags.get('precision'))}, recall {_fmt(flags.get('recall'))} "
                     f"(TP {flags.get('true_positives')}, FP {flags.get('false_positives')}, "
                     f"FN {flags.get('false_negatives')}, TN {flags.get('true_negatives')})")
        for source, pr in (flags.get("by_source") or {}).items():
            lines.append(f"  {source} alone: precision {_fmt(pr['precision'])}, recall {_fmt(pr['recall'])}")
    models = data.get("reward_models") or {}
    if models:
        lines += ["", f"{'reward model on':<14}{'rows':>7}{'wrong':>7}{'gold accuracy':>15}  {'per seed':<22}"
                      f"{'held-out pairs':>14}{'steps':>7}{'seconds':>9}  export"]
        for name, m in models.items():
            wrong = ((data.get("exports") or {}).get(name) or {}).get("wrong")
            lines.append(f"{name:<14}{m.get('rows', 0):>7}{_fmt(wrong):>7}{_fmt(m.get('gold_accuracy')):>15}  "
                         f"{per_seed(m):<22}{_fmt(m.get('pairs')):>14}"
                         f"{_fmt(m.get('steps')):>7}{_fmt(m.get('seconds')):>9}  "
                         f"{((data.get('exports') or {}).get(name) or {}).get('description', '')}")
        lines.append("gold accuracy is the mean over the seeds' reward models (same export, steps and settings)")
    lines += ["", "targets"]
    for name, (value, goal, ok) in s["targets"].items():
        lines.append(f"  {name:<40}{_fmt(value):>8} ({goal}): {'met' if ok else 'NOT met'}")
    if data.get("error"):
        lines += ["", f"FAILED: {data['error']}"]
    return "\n".join(lines)


def report_write(*, data: dict, report_dir: Path) -> tuple[Path, str]:
    """table.txt, report.json and report.html into report_dir. Returns (html path, table)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    table = table_text(data)
    (report_dir / "table.txt").write_text(table + "\n")
    (report_dir / "report.json").write_text(json.dumps(data, indent=2, default=str))
    html = render_to_string("training/population_report.html", {"data": data, "table": table,
                                                                 "summary": data.get("summary") or summary(data)})
    path = report_dir / "report.html"
    path.write_text(html)
    return path, table


def population_run(*, config: PopulationConfig, report_dir: str | Path | None = None, base_url: str | None = None,
                   out=None) -> PopulationOutcome:
    """Run the experiment and write its report. Raises PopulationError (after writing what it has) on failure;
    ValueError (before doing anything) on a bad configuration."""
    behaviours = config_check(config)
    if report_dir is None:
        report_dir = Path(settings.BASE_DIR) / "var" / "reports" / f"population-{datetime.now():%Y%m%d-%H%M%S}"
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    experiment = Experiment(config=config, behaviours=behaviours, report_dir=report_dir, base_url=base_url, out=out)
    error = None
    try:
        experiment.run()
    except PopulationError as exc:
        error = exc
    except (labelers.SimulationError, RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        error = PopulationError(str(exc))
    finally:
        experiment.stop()
    data = experiment.result(str(error) if error else None)
    path, table = report_write(data=data, report_dir=report_dir)
    if error:
        experiment.out.write(table + "\n")
        raise PopulationError(f"{error}\n(partial report: {path})")
    return PopulationOutcome(report_dir=report_dir, report_path=path, table=table, data=data)
