"""Simulated labelers over HTTP against a live server: gold judgements, noise, users, the command."""

import json
import random

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation, Membership, Task
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member
from training.pipelines import synthetic
from training.simulation import labelers
from training.simulation import services as sim_services

pytestmark = pytest.mark.django_db(transaction=True)


def pair_texts(n: int, seed: int = 0) -> list[tuple[list[dict], tuple[str, str]]]:
    """n (prompt, (a, b)) whose gold scores differ, so every pair has a right answer."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        prompt = synthetic.make_prompt(rng)
        topic = synthetic.topic_of(prompt)
        a, b = synthetic.candidate(rng, topic), synthetic.candidate(rng, topic)
        if a and b and synthetic.gold_compare(prompt, a, b)["winner"]:
            out.append((prompt, (a, b)))
    return out


def project_with_pairs(n: int, *, seed: int = 0, overlap: int = 1):
    project = ProjectFactory(overlap=overlap)
    for prompt, texts in pair_texts(n, seed):
        comparison_task(project=project, texts=texts, prompt__messages=prompt)
    return project


def gold_of(annotation: Annotation) -> list[list[int]]:
    task = annotation.task
    shown = [{"id": tr.response_id, "text": tr.response.text} for tr in task.task_responses.select_related("response")]
    return labelers.gold_ranking(messages=task.prompt.messages, responses=shown)


def test_labelers_finish_a_mixed_project_with_the_gold_choices_at_no_noise(live_server):
    project = project_with_pairs(8, overlap=1)
    prompts = synthetic.make_prompts(6, seed=3)
    for i, prompt in enumerate(prompts):
        TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION, prompt__messages=prompt,
                    prompt__external_id=f"demo-{i}")
    # Three responses, three distinct gold scores: the ranking must be exactly best, middle, worst.
    triple_prompt = [{"role": "user", "content": "Write a happy sentence about cats."}]
    triple = comparison_task(
        project=project, prompt__messages=triple_prompt,
        texts=("Cats are sad.", "Cats are happy, warm and kind.", "Cats are small."),
    )
    # A gold tie (equal scores) is submitted as a tie.
    tie = comparison_task(project=project, texts=("Dogs are lovely.", "Dogs are nice."),
                          prompt__messages=[{"role": "user", "content": "Say something nice about dogs."}])
    accounts = sim_services.sim_labelers_ensure(project=project, count=3)

    result = labelers.label_project(base_url=live_server.url, project_id=project.pk, accounts=accounts, noise=0.0)

    assert result.labels == 16 and result.by_kind == {"comparison": 10, "demonstration": 6}
    assert result.flipped == 0 and result.ties == 1
    assert result.labels_per_second > 0
    assert not project.tasks.filter(status=Task.Status.OPEN).exists()
    assert len({d.labeler for d in result.decisions}) >= 2, "the labelers work side by side"
    comparisons = Annotation.objects.filter(project=project, kind=Annotation.Kind.COMPARISON)
    assert comparisons.count() == 10
    for annotation in comparisons:
        assert annotation.ranking == gold_of(annotation)
    by_text = {r.text: r.pk for r in triple.responses.all()}
    triple_annotation = comparisons.get(task=triple)
    assert triple_annotation.ranking == [
        [by_text["Cats are happy, warm and kind."]], [by_text["Cats are small."]], [by_text["Cats are sad."]]
    ]
    tie_annotation = comparisons.get(task=tie)
    assert len(tie_annotation.ranking) == 1 and tie_annotation.strength == Annotation.Strength.TIE
    for annotation in comparisons.exclude(task__in=[triple, tie]):
        task = annotation.task
        texts = {r.pk: r.text for r in task.responses.all()}
        best, worst = texts[annotation.ranking[0][0]], texts[annotation.ranking[1][0]]
        assert annotation.strength == synthetic.gold_compare(task.prompt.messages, best, worst)["strength"]
    demos = Annotation.objects.filter(project=project, kind=Annotation.Kind.DEMONSTRATION).select_related("task__prompt")
    assert demos.count() == 6
    for demo in demos:
        assert synthetic.gold_score(demo.task.prompt.messages, demo.text) >= 1.0, demo.text  # positive, sensible
        assert demo.response.author == demo.labeler  # it became a human-written Response
    assert len({d.text for d in demos}) > 1, "the gold writer varies its answers"


def test_noise_one_flips_every_judgement(live_server):
    project = project_with_pairs(10, seed=1)
    accounts = sim_services.sim_labelers_ensure(project=project, count=2)

    result = labelers.label_project(base_url=live_server.url, project_id=project.pk, accounts=accounts, noise=1.0)

    assert result.by_kind == {"comparison": 10} and result.flipped == 10
    for annotation in Annotation.objects.filter(project=project):
        assert annotation.ranking == list(reversed(gold_of(annotation)))


def test_half_noise_flips_about_half_and_repeats_exactly_with_the_same_seed(live_server):
    project = project_with_pairs(40, seed=2)
    accounts = sim_services.sim_labelers_ensure(project=project, count=1)

    result = labelers.label_project(
        base_url=live_server.url, project_id=project.pk, accounts=accounts, noise=0.5, seed=7
    )

    wrong = sum(a.ranking != gold_of(a) for a in Annotation.objects.filter(project=project))
    assert wrong == result.flipped
    assert 0.3 <= result.flipped / 40 <= 0.7
    # The draws depend on (seed, labeler, what the task shows) only: recomputing them gives the same flips.
    expected = sum(
        labelers.decision_rng(seed=7, labeler=accounts[0].username, task=labelers.task_key(shown(t))).random() < 0.5
        for t in project.tasks.all()
    )
    assert result.flipped == expected


def shown(task: Task) -> dict:
    """What the claim payload shows of a comparison: its messages and its responses."""
    return {"messages": task.prompt.messages,
            "responses": [{"id": tr.response_id, "text": tr.response.text} for tr in task.task_responses.all()]}


def test_a_task_key_is_what_the_task_shows_not_its_ids_or_display_order():
    task = {"messages": [{"role": "user", "content": "Say something nice about dogs."}],
            "responses": [{"id": 7, "text": "Dogs are lovely."}, {"id": 8, "text": "Dogs are nice."}]}
    same = {"messages": task["messages"],
            "responses": [{"id": 31, "text": "Dogs are nice."}, {"id": 30, "text": "Dogs are lovely."}]}
    other = {"messages": task["messages"],
             "responses": [{"id": 7, "text": "Dogs are lovely."}, {"id": 8, "text": "Dogs are nicer."}]}

    assert labelers.task_key(task) == labelers.task_key(same)
    assert labelers.task_key(task) != labelers.task_key(other)
    # Tied responses rank in text order, so the submitted ranking is the same whatever the order shown.
    assert labelers.gold_ranking(**{k: same[k] for k in ("messages", "responses")}) == [[30, 31]]


def labeled(annotation: Annotation) -> tuple:
    """Who labeled which prompt, and what they gave: the text, or the ranking in response texts (not ids)."""
    texts = dict(annotation.task.task_responses.values_list("response_id", "response__text"))
    given = annotation.text or [[texts[i] for i in group] for group in annotation.ranking]
    return annotation.labeler.username, annotation.task.prompt.messages[-1]["content"], json.dumps(given)


def test_labeling_in_turn_repeats_exactly_on_a_copy_of_the_project(live_server):
    """Same seed, same tasks in a new project (new ids): every labeler labels the same tasks the same way."""
    runs = []
    for _ in range(2):
        project = project_with_pairs(12, seed=5)
        for i, prompt in enumerate(synthetic.make_prompts(6, seed=3)):
            TaskFactory(project=project, kind=Task.Kind.DEMONSTRATION, prompt__messages=prompt,
                        prompt__external_id=f"demo-{i}")
        accounts = sim_services.sim_labelers_ensure(project=project, count=3)
        result = labelers.label_project(base_url=live_server.url, project_id=project.pk, accounts=accounts,
                                        noise=0.5, seed=11, in_turn=True)
        work = sorted(labeled(a) for a in Annotation.objects.filter(project=project).select_related("labeler", "task__prompt"))
        runs.append((work, result.flipped, sorted(d.labeler for d in result.decisions)))

    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 18 and 0 < runs[0][1] < 12
    assert len(set(runs[0][2])) == 3, "the rotation gives every labeler work"


def test_labeler_accounts_are_made_once_and_keep_an_admins_role():
    project = ProjectFactory()
    first = sim_services.sim_labelers_ensure(project=project, count=3)
    admin = first[0]
    Membership.objects.filter(project=project, user__username=admin.username).update(role=Membership.Role.ADMIN)

    again = sim_services.sim_labelers_ensure(project=project, count=3)

    assert [a.token for a in again] == [a.token for a in first]
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {"sim-labeler-0": "admin", "sim-labeler-1": "labeler", "sim-labeler-2": "labeler"}


def test_the_command_labels_a_project_and_prints_a_summary(live_server, capsys):
    project = project_with_pairs(5, seed=4)
    member(project, Membership.Role.ADMIN)

    call_command("simulate", "--project", project.slug, "--labelers", "2", "--noise", "0",
                 "--base-url", live_server.url)

    out = capsys.readouterr().out
    assert "2 simulated labelers" in out and "5 comparison" in out and "labels/s" in out
    assert project.tasks.filter(status=Task.Status.DONE).count() == 5
    assert project.memberships.filter(user__username__startswith="sim-labeler-").count() == 2


def test_the_command_rejects_bad_input_and_changes_nothing():
    project = ProjectFactory()
    with pytest.raises(CommandError, match="No project"):
        call_command("simulate", "--project", "no-such-project")
    with pytest.raises(CommandError, match="--noise"):
        call_command("simulate", "--project", project.slug, "--noise", "1.5")
    with pytest.raises(CommandError, match="labelers"):
        call_command("simulate", "--project", project.slug, "--labelers", "0", "--base-url", "http://127.0.0.1:9")
    assert not project.memberships.exists()


def test_a_non_member_labeler_is_stopped_with_the_servers_reason(live_server):
    project = project_with_pairs(1)
    _, token = sim_services.sim_user_ensure(username="outsider")

    with pytest.raises(labelers.SimulationError, match="404"):
        labelers.label_project(base_url=live_server.url, project_id=project.pk,
                               accounts=[labelers.Account("outsider", token)])
    assert not Annotation.objects.exists()
