"""Simulated populations: each labeler behaviour, the mix, qualification over HTTP, flag precision/recall, the run."""

import json
import random

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation, GoldRecord, Task
from tests.factories import ProjectFactory, comparison_task
from training.pipelines import synthetic
from training.simulation import labelers, population
from training.simulation import services as sim_services

Behaviour = labelers.Behaviour


def fixed_pairs(n: int, seed: int = 0) -> list[tuple[list[dict], list[dict]]]:
    """n (messages, responses) pairs that the gold function separates, responses as the API shows them."""
    items = population.gold_pairs(n, seed=seed, topics=list(synthetic.TOPICS))
    rng = random.Random(seed)
    out = []
    for i, item in enumerate(items):
        responses = [{"id": 2 * i + 1, "text": item["better"]}, {"id": 2 * i + 2, "text": item["worse"]}]
        rng.shuffle(responses)  # the display order: the better one is first about half the time
        out.append((item["messages"], responses))
    return out


def judge_all(behaviour: Behaviour, pairs, labeler: str = "l") -> list[tuple[dict, bool, list[dict], list[dict]]]:
    out = []
    for task_id, (messages, responses) in enumerate(pairs):
        rng = labelers.decision_rng(seed=3, labeler=labeler, task=str(task_id))
        body, flipped = labelers.judge_as(behaviour=behaviour, messages=messages, responses=responses, rng=rng)
        out.append((body, flipped, messages, responses))
    return out


def gold_top(messages, responses) -> int:
    return labelers.gold_ranking(messages=messages, responses=responses)[0][0]


# Behaviours ------------------------------------------------------------------------------------------


def test_a_careful_labeler_judges_as_gold_and_an_adversarial_one_inverts_every_pair():
    pairs = fixed_pairs(200)
    for body, flipped, messages, responses in judge_all(Behaviour("careful"), pairs):
        assert body["ranking"] == labelers.gold_ranking(messages=messages, responses=responses) and not flipped
        by_id = {r["id"]: r["text"] for r in responses}
        assert body["strength"] == synthetic.gold_compare(messages, by_id[body["ranking"][0][0]],
                                                          by_id[body["ranking"][1][0]])["strength"]
    for body, flipped, messages, responses in judge_all(Behaviour("adversarial"), pairs):
        assert body["ranking"] == list(reversed(labelers.gold_ranking(messages=messages, responses=responses)))
        assert flipped


def test_a_spammer_is_right_about_half_the_time_whatever_the_order_and_varies_its_strength():
    judged = judge_all(Behaviour("spammer"), fixed_pairs(600))
    right = sum(body["ranking"][0][0] == gold_top(m, r) for body, _, m, r in judged)
    first = sum(body["ranking"][0][0] == r[0]["id"] for body, _, m, r in judged)
    assert 0.43 <= right / 600 <= 0.57
    assert 0.43 <= first / 600 <= 0.57
    assert {body["strength"] for body, *_ in judged} == set(labelers.SPAM_STRENGTHS)
    # Deterministic per (seed, labeler, task): the same draws give the same answers, another labeler others.
    assert judge_all(Behaviour("spammer"), fixed_pairs(600)) == judged
    assert [b for b, *_ in judge_all(Behaviour("spammer"), fixed_pairs(600), labeler="m")] != [b for b, *_ in judged]


def test_a_position_biased_labeler_always_picks_the_first_shown():
    judged = judge_all(Behaviour("position"), fixed_pairs(300))
    assert all(body["ranking"] == [[r[0]["id"]], [r[1]["id"]]] for body, _, m, r in judged)
    right = sum(body["ranking"][0][0] == gold_top(m, r) for body, _, m, r in judged)
    assert 0.4 <= right / 300 <= 0.6, "display order is random, so the first is right about half the time"


def test_a_noisy_labeler_flips_at_its_rate():
    judged = judge_all(Behaviour("noisy", flip=0.2), fixed_pairs(1000))
    flipped = [f for _, f, *_ in judged]
    wrong = [body["ranking"][0][0] != gold_top(m, r) for body, _, m, r in judged]
    assert flipped == wrong
    assert 0.16 <= sum(flipped) / 1000 <= 0.24
    assert not any(f for _, f, *_ in judge_all(Behaviour("noisy", flip=0.0), fixed_pairs(100)))


# The mix ---------------------------------------------------------------------------------------------


def test_the_mix_parses_and_assigns_its_shares():
    mix = labelers.mix_parse("careful=0.7,spammer=0.15,position=0.15")
    assert [(b.label, s) for b, s in mix] == [("careful", 0.7), ("spammer", 0.15), ("position", 0.15)]
    behaviours = labelers.mix_assign(mix, 20, seed=0)
    counts = {kind: sum(b.kind == kind for b in behaviours) for kind in ("careful", "spammer", "position")}
    assert counts == {"careful": 14, "spammer": 3, "position": 3}
    assert sum(b.bad for b in behaviours) == 6
    assert labelers.mix_assign(mix, 20, seed=0) == behaviours
    noisy = labelers.mix_parse("noisy:0.3=0.5,noisy=0.25,adversarial=0.25", flip=0.1)
    assert [(b.label, b.bad) for b, _ in noisy] == [("noisy:0.3", False), ("noisy:0.1", False), ("adversarial", True)]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("careful=0.7,sloppy=0.3", "unknown labeler kind 'sloppy'"),
    ("careful=0.7,spammer=0.2", "add up to 1, not 0.9"),
    ("careful=0.5,careful=0.5", "careful appears twice"),
    ("careful=lots", "share must be a number"),
    ("careful", "kind=share"),
    ("careful=0,spammer=1", "above 0"),
    ("noisy:1.5=1", "between 0 and 1"),
    ("noisy:x=1", "flip probability must be a number"),
    ("spammer:0.2=1", "only noisy takes a flip"),
])
def test_a_bad_mix_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        labelers.mix_parse(text)


def test_too_few_labelers_for_a_mix_is_refused():
    with pytest.raises(ValueError, match="too few for the mix: spammer"):
        labelers.mix_assign(labelers.mix_parse("careful=0.9,spammer=0.1"), 4)


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["--population", "--mix", "careful=0.7,spammer=0.2"], "add up to 1"),
    (["--population", "--mix", "careful=0.7,robot=0.3"], "unknown labeler kind"),
    (["--population", "--labelers", "4"], "too few for the mix"),
    (["--population", "--overlap", "30"], "--overlap must be between 1"),
    (["--population", "--qualification", "five"], "N:X"),
    (["--population", "--qualification", "5:2"], "X must be between 0 and 1"),
    (["--population", "--qualification", "50:0.8"], "50 gold answers, but the project has 40"),
    (["--population", "--gold-rate", "1.5"], "--gold-rate"),
    (["--population", "--noise", "0.2"], "--noise does not go with --population"),
    (["--population", "--full-loop"], "leave out --full-loop"),
    (["--population", "--set", "nonsense=1"], "Unknown population setting"),
    (["--overlap", "3"], "--overlap go with --population"),
    (["--project", "x", "--flip", "0.3"], "--flip goes with a --mix"),
    (["--project", "x", "--mix", "careful=1", "--flip", "3"], "--flip must be between 0 and 1"),
    (["--full-loop", "--mix", "careful=1"], "--mix goes with --project or --population"),
])
def test_the_command_refuses_a_bad_population_with_a_clear_error_and_makes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args)
    assert not Task.objects.exists()


# Qualification over HTTP -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_spammer_is_held_out_by_qualification_and_a_careful_labeler_is_not(live_server):
    # 16 gold answers, at least 90% right: a random labeler passes with probability 17/65536.
    project = ProjectFactory(overlap=1, qualification_tasks=16, qualification_min_accuracy=0.9)
    for i, item in enumerate(population.gold_pairs(20, seed=5, topics=list(synthetic.TOPICS))):
        task = comparison_task(project=project, texts=(item["better"], item["worse"]),
                               prompt__messages=item["messages"], prompt__external_id=f"gold-{i}")
        better, worse = task.task_responses.order_by("response_id").values_list("response_id", flat=True)
        task.is_gold, task.gold = True, {"ranking": [[better], [worse]]}
        task.save(update_fields=["is_gold", "gold"])
    for i, item in enumerate(population.gold_pairs(6, seed=6, topics=list(synthetic.TOPICS))):
        comparison_task(project=project, texts=(item["better"], item["worse"]), prompt__messages=item["messages"],
                        prompt__external_id=f"real-{i}")
    accounts = sim_services.sim_labelers_ensure(project=project, count=2, prefix="qual")

    result = labelers.label_project(base_url=live_server.url, project_id=project.pk, accounts=accounts,
                                    behaviours=[Behaviour("careful"), Behaviour("spammer")])

    assert result.stopped == {"qual-1": "held_out"}
    records = {r.labeler.username: r for r in GoldRecord.objects.filter(project=project).select_related("labeler")}
    assert records["qual-0"].status == GoldRecord.Status.QUALIFIED and records["qual-0"].decided_correct == 16
    assert records["qual-1"].status == GoldRecord.Status.HELD_OUT and records["qual-1"].decided_answered == 16
    real = Annotation.objects.filter(project=project, task__is_gold=False)
    assert set(real.values_list("labeler__username", flat=True)) == {"qual-0"} and real.count() == 6
    # Held out counts as caught.
    rows = population.flag_calls(behaviours={"qual-0": "careful", "qual-1": "spammer"}, report_rows=[],
                                 held_out={"qual-1"}, min_competence=0.7)
    assert [(r["username"], r["flagged"], r["reasons"]) for r in rows] == [
        ("qual-0", False, []), ("qual-1", True, ["held out by qualification"])]


# Precision and recall --------------------------------------------------------------------------------


def test_flag_precision_and_recall_on_a_fixed_table():
    behaviours = {f"p-{i}": kind for i, kind in enumerate(
        ["careful", "careful", "careful", "careful", "noisy:0.2", "spammer", "spammer", "position", "adversarial"])}
    report_rows = [
        {"username": "p-0", "judgments": 40, "dawid_skene": 0.97, "flags": []},
        {"username": "p-1", "judgments": 40, "dawid_skene": 0.65, "flags": []},                      # FP: competence
        {"username": "p-2", "judgments": 40, "dawid_skene": 0.95, "flags": [{"reason": "outlier"}]},  # FP: a flag
        {"username": "p-3", "judgments": 40, "dawid_skene": None, "flags": []},
        {"username": "p-4", "judgments": 40, "dawid_skene": 0.8, "flags": []},
        {"username": "p-5", "judgments": 40, "dawid_skene": 0.5, "flags": []},                       # TP
        {"username": "p-6", "judgments": 40, "dawid_skene": 0.9, "flags": []},                       # FN
        {"username": "p-7", "judgments": 40, "dawid_skene": 0.55, "flags": [{"reason": "position_bias"}]},  # TP
    ]
    rows = population.flag_calls(behaviours=behaviours, report_rows=report_rows, held_out={"p-8"},
                                 min_competence=0.7)  # p-8: held out, so no report row

    assert [r["username"] for r in rows] == [f"p-{i}" for i in range(9)]
    assert [r["bad"] for r in rows] == [False] * 5 + [True] * 4
    assert rows[7]["reasons"] == ["position_bias", "competence 0.55 < 0.7"]
    assert rows[8]["reasons"] == ["held out by qualification"] and rows[8]["judgments"] == 0
    pr = population.precision_recall(rows)
    assert pr == {"precision": 3 / 5, "recall": 3 / 4, "true_positives": 3, "false_positives": 2,
                  "false_negatives": 1, "true_negatives": 3}
    by_source = population.precision_recall_by_source(rows)
    assert (by_source["quality flags"]["precision"], by_source["quality flags"]["recall"]) == (0.5, 0.25)
    assert (by_source["competence"]["precision"], by_source["competence"]["recall"]) == (2 / 3, 0.5)
    assert (by_source["qualification"]["precision"], by_source["qualification"]["recall"]) == (1.0, 0.25)
    assert population.precision_recall(rows[:1]) == {
        "precision": None, "recall": None, "true_positives": 0, "false_positives": 0, "false_negatives": 0,
        "true_negatives": 1}


def test_the_summary_reads_the_targets_with_accuracies_as_counts_of_pairs():
    data = {"flags": {"precision": 1.0, "recall": 0.9},
            "reward_models": {"clean": {"gold_accuracy": 290 / 300}, "unfiltered": {"gold_accuracy": 260 / 300},
                              "filtered": {"gold_accuracy": 281 / 300}, "weighted": {"gold_accuracy": 280 / 300}}}
    s = population.summary(data)
    assert s["filtered_best"] == "filtered" and s["filtered_gap"] == pytest.approx(0.03)
    assert [ok for _, _, ok in s["targets"].values()] == [True, True, True, True]
    data["reward_models"]["filtered"]["gold_accuracy"] = 280 / 300
    data["reward_models"]["unfiltered"]["gold_accuracy"] = 261 / 300
    data["flags"]["recall"] = 0.8
    assert [ok for _, _, ok in population.summary(data)["targets"].values()] == [True, False, False, False]


def test_held_out_pairs_have_topics_no_task_has_and_a_gold_answer():
    train, heldout = population.topic_split(seed=0, heldout=4)
    assert len(heldout) == 4 and not set(train) & set(heldout) and set(train) | set(heldout) == set(synthetic.TOPICS)
    pairs = population.gold_pairs(50, seed=1, topics=heldout)
    assert {synthetic.topic_of(p["messages"]) for p in pairs} <= set(heldout)
    assert all(synthetic.gold_score(p["messages"], p["better"]) > synthetic.gold_score(p["messages"], p["worse"])
               for p in pairs)
    lines = [json.loads(line) for line in population.import_lines(tasks=pairs[:30], gold=pairs[30:], seed=0)]
    gold = [line for line in lines if "gold" in line]
    assert len(lines) == 50 and len(gold) == 20
    assert all(line["responses"][line["gold"]["ranking"][0][0]] in {p["better"] for p in pairs} for line in gold)
    firsts = sum(line["responses"][0] in {p["better"] for p in pairs} for line in lines)
    assert 10 <= firsts <= 40, "the better response is not always first in the file"


# The whole experiment, tiny ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_tiny_population_run_reports_flags_and_reward_models(live_server, tiny_base_model, tmp_path, capsys):
    call_command("simulate", "--population", "--small", "--base-url", live_server.url, "--report-dir", str(tmp_path))
    out = capsys.readouterr().out

    data = json.loads((tmp_path / "report.json").read_text())
    assert data["error"] is None and all(s["status"] == "succeeded" for s in data["stages"])
    flags = data["flags"]
    assert len(flags["labelers"]) == 5 and sum(r["bad"] for r in flags["labelers"]) == 2
    assert flags["true_positives"] + flags["false_negatives"] == 2
    assert set(data["reward_models"]) >= {"clean", "unfiltered", "filtered"}
    for name, model in data["reward_models"].items():
        assert model["rows"] == data["exports"][name]["rows"] > 0
        assert 0.0 <= model["gold_accuracy"] <= 1.0 and model["pairs"] == 24 and model["steps"] == 3
    assert data["exports"]["filtered"]["rows"] < data["exports"]["unfiltered"]["rows"]
    assert data["exports"]["clean"]["wrong"] == 0 < data["exports"]["unfiltered"]["wrong"]
    for name in ("population", "clean"):
        project = data["projects"][name]
        assert not Task.objects.filter(project_id=project["id"], is_gold=False, status=Task.Status.OPEN).exists()
    assert "flag precision" in out and "reward model on" in out
    assert (tmp_path / "report.html").read_text().count("<tr>") > 10


@pytest.mark.django_db(transaction=True)
def test_the_command_labels_a_project_with_a_mix(live_server, capsys):
    project = ProjectFactory(overlap=1)
    for i, item in enumerate(population.gold_pairs(20, seed=8, topics=list(synthetic.TOPICS))):
        comparison_task(project=project, texts=(item["better"], item["worse"]), prompt__messages=item["messages"],
                        prompt__external_id=f"t-{i}")

    call_command("simulate", "--project", project.slug, "--labelers", "2", "--mix", "careful=0.5,adversarial=0.5",
                 "--base-url", live_server.url)

    out = capsys.readouterr().out
    assert "mix careful=0.5,adversarial=0.5" in out and "20 comparison" in out
    # The better response is shown first in every task here: careful ranks it first, adversarial last.
    behaviours = labelers.mix_assign(labelers.mix_parse("careful=0.5,adversarial=0.5"), 2, seed=0)
    kind_of = {f"sim-labeler-{i}": b.kind for i, b in enumerate(behaviours)}
    annotations = Annotation.objects.filter(project=project).select_related("labeler")
    assert annotations.count() == 20 and {kind_of[a.labeler.username] for a in annotations} == {"careful", "adversarial"}
    for annotation in annotations:
        better = annotation.task.task_responses.get(position=0).response_id
        assert (annotation.ranking[0][0] == better) == (kind_of[annotation.labeler.username] == "careful")


def test_each_export_trains_one_reward_model_per_seed_and_counts_their_mean(tmp_path, monkeypatch):
    from training.simulation import population_rm

    seen = []

    def fake_run(cfg):
        seen.append((cfg.seed, cfg.output_dir))
        return {"eval_accuracy": {0: 0.80, 1: 0.86, 2: 0.83}[cfg.seed], "eval_pairs": 300, "loss": 0.5}

    monkeypatch.setattr(population_rm.reward, "run", fake_run)
    train = tmp_path / "clean.jsonl"
    train.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 3)
    cfg = {"base_model": str(tmp_path), "heldout": str(train), "work_dir": str(tmp_path / "work"), "seeds": [0, 1, 2],
           "reward": {"max_steps": 5}, "variants": {"clean": str(train)}, "output": str(tmp_path / "out.json")}
    result = population_rm.run(cfg)["clean"]
    assert [s for s, _ in seen] == [0, 1, 2] and len({d for _, d in seen}) == 3  # a directory per seed
    assert result["gold_accuracy"] == pytest.approx((0.80 + 0.86 + 0.83) / 3)
    assert result["gold_accuracies"] == [0.80, 0.86, 0.83] and result["rows"] == 3 and result["steps"] == 5
    assert "0.800 0.860 0.830" in population.table_text({"reward_models": {"clean": result}, "exports": {}})
    with pytest.raises(ValueError, match="reward_seeds"):
        population.config_check(population.population_config(overrides=["reward_seeds=0"]))


def test_a_faster_behaviour_takes_a_bigger_share_and_reports_shorter_times():
    config = population.population_config(overrides=["labelers=4", "tasks=100", "overlap=2", "gold_rate=0"])
    kinds = [labelers.Behaviour("careful"), labelers.Behaviour("careful"), labelers.Behaviour("spammer"),
             labelers.Behaviour("position")]
    shares, reported = population.pace_shares(config=config, behaviours=kinds)
    assert shares == [29, 29, 86, 58]  # 200 labels split 1:1:3:2, rounded up
    assert reported[0] == population.REPORTED_MS and reported[2] == (1333, 4000) and reported[3] == (2000, 6000)
    equal = population.population_config(overrides=["labelers=4", "tasks=100", "overlap=2", "gold_rate=0",
                                                    "paces.spammer=1", "paces.position=1"])
    assert population.pace_shares(config=equal, behaviours=kinds)[0] == [50, 50, 50, 50]
    for bad in ("paces.lazy=2", "paces.spammer=0", "paces.spammer=11"):
        with pytest.raises(ValueError, match="paces"):
            population.config_check(population.population_config(overrides=[bad]))
