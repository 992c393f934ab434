"""The short loop (CI): `simulate --full-loop --small` through a real Celery worker, every stage and link checked."""

import json
import time

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation, Project, Task
from training.models import DatasetSnapshot, Evaluation, GenerationJob, ModelVersion, TrainingRun
from training.pipelines import synthetic
from training.simulation import full_loop, report

STAGES = [
    "services", "base model", "project", "import", "demonstrations", "sft", "generate sft", "comparisons", "reward",
    "rlhf", "dpo", "held-out import", "generate rlhf", "comparisons rlhf", "eval rlhf vs sft", "eval dpo vs sft",
    "gold scoring", "lineage",
]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_small_full_loop_runs_every_stage_and_links_every_artefact(
    live_server, celery_worker_process, tiny_base_model, tmp_path, capsys
):
    started = time.monotonic()
    call_command("simulate", "--full-loop", "--small", "--noise", "0.2", "--base-url", live_server.url,
                 "--worker", "none", "--report-dir", str(tmp_path))
    seconds = time.monotonic() - started
    out = capsys.readouterr().out

    data = json.loads((tmp_path / "report.json").read_text())
    assert [s["name"] for s in data["stages"]] == STAGES
    assert all(s["status"] == "succeeded" for s in data["stages"]), data["stages"]
    assert data["error"] is None
    assert seconds < 420, f"the short loop took {seconds:.0f}s"

    project = Project.objects.get(pk=data["project"]["id"])
    base = ModelVersion.objects.get(pk=tiny_base_model.pk)
    sft = ModelVersion.objects.get(pk=data["models"]["sft"]["id"])
    reward = ModelVersion.objects.get(pk=data["models"]["reward"]["id"])
    rlhf = ModelVersion.objects.get(pk=data["models"]["rlhf"]["id"])
    dpo = ModelVersion.objects.get(pk=data["models"]["dpo"]["id"])

    # Models: base -> sft -> (reward) -> rlhf / dpo, each produced by a succeeded run of this project.
    assert data["models"]["base"]["id"] == base.pk and base.kind == ModelVersion.Kind.BASE
    assert (sft.kind, sft.parent) == (ModelVersion.Kind.SFT, base)
    assert (reward.kind, reward.parent) == (ModelVersion.Kind.REWARD, sft)
    assert (rlhf.kind, rlhf.parent) == (ModelVersion.Kind.POLICY, sft)
    assert (dpo.kind, dpo.parent) == (ModelVersion.Kind.POLICY, sft)
    formats = {"sft": "sft", "reward": "preference", "rlhf": "prompts", "dpo": "preference"}
    for model in (sft, reward, rlhf, dpo):
        run = model.produced_by
        assert run.status == TrainingRun.Status.SUCCEEDED and run.project == project
        assert run.base_model == model.parent and run.step == run.total_steps > 0
        assert run.snapshot.format == formats[run.kind] and run.snapshot.row_count > 0
        assert run.metric_points.exists()
    assert rlhf.produced_by.reward_model == reward
    # The reward run trains on tied answers too (LoopConfig.reward_data); dpo on the plain pairs.
    assert reward.produced_by.snapshot.filters == {"ties": True} and dpo.produced_by.snapshot.filters == {}
    assert reward.produced_by.snapshot.row_count >= dpo.produced_by.snapshot.row_count
    assert sft.produced_by.snapshot.row_count == Annotation.objects.filter(
        project=project, kind=Annotation.Kind.DEMONSTRATION).count() == 24
    # Held-out prompts came after every training snapshot was frozen.
    last_snapshot = DatasetSnapshot.objects.filter(runs__project=project).order_by("-created_at").first()
    assert not project.prompts.filter(external_id__startswith="heldout-", created_at__lt=last_snapshot.created_at).exists()

    # Generation jobs -> their model versions -> comparison tasks -> annotations.
    jobs = {job.model_version_id: job for job in GenerationJob.objects.filter(project=project, evaluation=None)}
    assert set(jobs) == {sft.pk, rlhf.pk}
    for model_id, job in jobs.items():
        tasks = Task.objects.filter(project=project, metadata__generation_job=job.pk)
        assert job.status == GenerationJob.Status.SUCCEEDED and tasks.count() == job.tasks_created > 0
        for task in tasks:
            shown = list(task.responses.all())
            assert 2 <= len(shown) <= 3 and {r.model_version_id for r in shown} == {model_id}
            assert task.status == Task.Status.DONE
            assert task.annotations.get().kind == Annotation.Kind.COMPARISON
    evaluations = Evaluation.objects.filter(project=project).order_by("id")
    assert [(e.model_a, e.model_b) for e in evaluations] == [(rlhf, sft), (dpo, sft)]
    for evaluation, key in zip(evaluations, ["eval rlhf vs sft", "eval dpo vs sft"]):
        job = GenerationJob.objects.get(evaluation=evaluation)
        assert job.status == GenerationJob.Status.SUCCEEDED and job.model_version_b == evaluation.model_b == sft
        results = data["evaluations"][key]
        assert results["tasks_done"] == results["tasks"] == job.tasks_created > 0
        assert results["n"] == results["wins"] + results["losses"] + results["ties"] == results["tasks"]
    assert not Task.objects.filter(project=project, kind=Task.Kind.COMPARISON, status=Task.Status.OPEN).exists()

    # The loop's own lineage checks all hold, and the report carries the numbers and the charts.
    assert data["lineage"] and all(c["ok"] for c in data["lineage"])
    scores = data["scores"]
    assert set(scores["gold"]) == {"base", "sft", "rlhf", "dpo"}
    assert set(scores["gold_win_rate"]) == {"base", "rlhf", "dpo"}
    assert 0 <= scores["reward_accuracy"]["synthetic"]["accuracy"] <= 1
    accuracy = scores["reward_accuracy"]
    assert 0 <= accuracy["in_distribution"]["accuracy"] <= 1 and 0 <= accuracy["out_of_distribution"]["accuracy"] <= 1
    assert set(accuracy["adversarial"]) == {"empty", "repeated", "stacked", "cut_off", "word_list", "all"}
    assert set(scores["diversity"]) == {"base", "sft", "rlhf", "dpo"} and scores["diversity"]["sft"]["samples"] == 8
    # The gold-vs-proxy curve: SFT at step 0, then every RLHF checkpoint (save_steps 1 in the short loop).
    assert [p["step"] for p in scores["kl_curve"]] == [0, 1, 2, 3]
    assert scores["kl_curve"][0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert all(p["proxy"] is not None and p["gold"] is not None for p in scores["kl_curve"])
    # The held-out prompts are the held-out split: templates and topics no training prompt has.
    heldout = {p.messages[-1]["content"] for p in project.prompts.filter(external_id__startswith="heldout-")}
    assert heldout and heldout <= synthetic.prompt_texts("heldout")
    train = {p.messages[-1]["content"] for p in project.prompts.filter(external_id__startswith="train-")}
    assert train <= synthetic.prompt_texts("train") and not train & heldout
    assert "kl" in data["runs"]["rlhf"]["metrics"] and data["models"]["rlhf"]["metrics"]["kl"] is not None
    html = (tmp_path / "report.html").read_text()
    assert "new Chart(" in html and "Chart.js" in html[:len(html)]  # the vendored library is inlined
    assert "<script src" not in html and "https://" not in html.split("<script>")[0]
    assert "gold win rate rlhf vs sft" in out and "reward model accuracy vs gold" in out
    assert "whole loop under 15 minutes" in out


def test_loop_config_overrides_and_rejects_unknown_settings():
    config = full_loop.loop_config(small=True, overrides=["k=4", "rlhf.beta=0.2", "with_dpo=false"])
    assert config.k == 4 and config.rlhf["beta"] == 0.2 and config.with_dpo is False
    # The full defaults are not shared with small, nor changed by an override.
    assert full_loop.loop_config().rlhf["beta"] == full_loop.LoopConfig().rlhf["beta"] != 0.2
    with pytest.raises(ValueError, match="Unknown loop setting"):
        full_loop.loop_config(overrides=["epochs=3"])
    with pytest.raises(ValueError, match="not a dict of settings"):
        full_loop.loop_config(overrides=["k.x=3"])


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "seed"), [
    ([], 0), (["--set", "seed=2"], 2), (["--seed", "3"], 3), (["--seed", "4", "--set", "seed=4"], 4),
])
def test_the_loops_seed_comes_from_set_or_seed(monkeypatch, args, seed):
    """`--set seed=N` once reached no loop: --seed's default overwrote it, so every "seed" was seed 0."""
    seen = []

    def loop_run(*, config, **kwargs):
        seen.append(config.seed)
        raise full_loop.LoopError("stopped by the test")

    monkeypatch.setattr(full_loop, "loop_run", loop_run)
    with pytest.raises(CommandError, match="stopped by the test"):
        call_command("simulate", "--full-loop", "--small", *args)
    assert seen == [seed]


@pytest.mark.django_db
def test_two_different_seeds_are_refused_and_nothing_runs(monkeypatch):
    monkeypatch.setattr(full_loop, "loop_run", lambda **kwargs: pytest.fail("the loop ran"))
    with pytest.raises(CommandError, match="--seed 1 and --set seed=2 disagree"):
        call_command("simulate", "--full-loop", "--small", "--seed", "1", "--set", "seed=2")


def test_report_table_marks_targets_and_failures(tmp_path):
    data = {
        "config": {"labelers": 2, "k": 4, "noise": 0.2}, "project": {"id": 1, "slug": "loop-x"},
        "stages": [{"name": "sft", "seconds": 12.5, "status": "succeeded", "detail": "run 3"},
                   {"name": "reward", "seconds": 3.0, "status": "failed", "detail": "boom"}],
        "total_seconds": 100.0,
        "models": {"rlhf": {"metrics": {"kl": 0.12, "reward": 1.5, "first_reward": 0.2}},
                   "reward": {"metrics": {"eval_accuracy": 0.8, "eval_pairs": 20}}},
        "runs": {"rlhf": {"kind": "rlhf", "metrics": {"kl": [[1, 0.1], [2, 0.14]], "reward": [[1, 0.2], [2, 1.5]]}}},
        "scores": {"gold": {"sft": {"gold_mean": 1.0, "gold_std": 0.5, "n": 8}},
                   "gold_win_rate": {"rlhf": {"win_rate": 0.7, "low": 0.5, "high": 0.85, "n": 8}},
                   "gold_win_rate_in": {"rlhf": {"win_rate": 0.75, "low": 0.5, "high": 0.9, "n": 8}},
                   "reward_accuracy": {"in_distribution": {"accuracy": 0.85, "pairs": 30},
                                       "out_of_distribution": {"accuracy": 0.65, "pairs": 30}},
                   "diversity": {"sft": {"samples": 24, "distinct_1": 0.4, "distinct_2": 0.5, "self_bleu": 0.3},
                                 "rlhf": {"samples": 24, "distinct_1": 0.3, "distinct_2": 0.45, "self_bleu": 0.4}},
                   "kl_curve": [{"step": 0, "kl": 0.0, "gold": 1.0, "proxy": 0.1},
                                {"step": 10, "kl": 1.5, "gold": 1.8, "proxy": 0.9}]},
        "labeling": {"comparisons rlhf": {"by_kind": {"comparison": 8}, "ties": 1}},
        "evaluations": {}, "lineage": [{"check": "x", "ok": True, "detail": ""}], "error": "reward failed",
    }
    path, table = report.report_write(data=data, report_dir=tmp_path)
    # In distribution 0.85 meets 0.8 at noise 0.2, but out of distribution 0.65 misses 0.7: not met.
    assert "in 0.850 / out 0.650 (in >= 0.8, out >= 0.7): NOT met" in table
    assert "in 0.750 / out 0.700 (in and out >= 0.65): met" in table
    assert "0.900 (>= 0.8): met" in table  # RLHF's distinct-2 over SFT's
    assert "RLHF step 10: KL to SFT / gold / proxy reward" in table
    assert "0.120 / 0.120" in table  # KL: last logged and the run's mean
    assert "FAILED: reward failed" in table
    html = path.read_text()
    assert "The loop stopped: reward failed" in html and 'id="loop-charts"' in html
    assert 'id="chart-kl"' in html and "<h2>Diversity</h2>" in html
    assert html.count(">not met<") == 1  # only the reward model's target
