"""Public preference datasets in: each format's fixture imports with its tasks, responses and labels.

The fixtures under tests/fixtures/imports/ are written by hand in each public schema. Each test
reads what the import stored: the prompt's messages, the comparison's responses, the imported
label's ranking (as response texts, best first) and its provenance (an external source, no labeler).
"""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Annotation, Membership, Prompt, Response, Task
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"


@pytest.fixture
def project():
    return ProjectFactory(overlap=1)


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


def upload(client, project, name: str, content: bytes | None = None, **fields):
    content = (FIXTURES / name).read_bytes() if content is None else content
    return client.post(
        f"/api/projects/{project.pk}/import/", {"file": SimpleUploadedFile(name, content), **fields}, format="multipart"
    )


def imported(client_for, admin, project, name: str, **fields) -> dict:
    response = upload(client_for(admin), project, name, **fields)
    assert response.status_code == 200, response.json()
    return response.json()


def task_of(project, external_id: str) -> Task:
    return Task.objects.get(project=project, prompt__external_id=external_id)


def task_by_user_turn(project, text: str) -> Task:
    """The task whose prompt's last (user) turn is this text."""
    for task in Task.objects.filter(project=project).select_related("prompt"):
        if task.prompt.messages[-1]["content"] == text:
            return task
    raise AssertionError(f"no task asks {text!r}")


def shown(task: Task) -> list[str]:
    """The task's responses in the order the line gave them."""
    return list(Response.objects.filter(tasks=task).order_by("pk").values_list("text", flat=True))


def ranked(annotation: Annotation) -> list[list[str]]:
    texts = dict(Response.objects.filter(tasks=annotation.task).values_list("pk", "text"))
    return [sorted(texts[pk] for pk in group) for group in annotation.ranking]


def labels_of(task: Task) -> list[Annotation]:
    return list(task.annotations.order_by("pk"))


# Detection, counts and what each format's lines become --------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, prompts, labels",
    [
        ("trl_standard.jsonl", "trl", 3, 3),
        ("trl_conversational.jsonl", "trl", 2, 2),
        ("trl_implicit.jsonl", "trl", 3, 3),
        ("trl_unpaired.jsonl", "trl", 3, 2),
        ("hh_rlhf.jsonl", "hh-rlhf", 3, 3),
        ("ultrafeedback_raw.jsonl", "ultrafeedback", 2, 2),
        ("ultrafeedback_binarized.jsonl", "ultrafeedback", 2, 2),
        ("oasst_messages.jsonl", "oasst", 3, 3),
        ("oasst_trees.jsonl", "oasst", 3, 3),
        ("label_studio_pairwise.json", "label-studio", 3, 3),
        ("label_studio_ranking.json", "label-studio", 2, 2),
    ],
)
def test_each_format_is_detected_and_imports_its_labels_from_an_external_source(
    client_for, admin, project, name, fmt, prompts, labels
):
    body = imported(client_for, admin, project, name)
    assert (body["format"], body["source"], body["labels"]) == (fmt, fmt, "use")
    assert (body["created_prompts"], body["created_tasks"], body["created_labels"]) == (prompts, prompts, labels)
    stored = Annotation.objects.filter(project=project)
    assert stored.count() == labels
    assert set(stored.values_list("labeler_id", "external_source", "external_hidden")) == {(None, fmt, False)}
    # Every imported label counts toward its task's done; overlap 1, so a labelled task is done.
    for task in Task.objects.filter(project=project):
        assert task.done == task.annotations.count()
        assert task.status == (Task.Status.DONE if task.done else Task.Status.OPEN)


def test_the_same_file_with_its_format_named_imports_the_same(client_for, admin, project):
    body = imported(client_for, admin, project, "hh_rlhf.jsonl", format="hh-rlhf", source="anthropic-hh")
    assert (body["format"], body["source"], body["created_labels"]) == ("hh-rlhf", "anthropic-hh", 3)
    assert set(Annotation.objects.values_list("external_source", flat=True)) == {"anthropic-hh"}


def test_trl_standard_pairs_keep_prompt_chosen_first_and_other_keys_as_metadata(client_for, admin, project):
    imported(client_for, admin, project, "trl_standard.jsonl")
    task = task_by_user_turn(project, "The sky is")
    assert task.prompt.messages == [{"role": "user", "content": "The sky is"}]
    assert shown(task) == [" blue.", " green."]
    [label] = labels_of(task)
    assert (label.kind, ranked(label)) == ("comparison", [[" blue."], [" green."]])
    assert task_by_user_turn(project, "Translate 'merci' into English.").prompt.metadata == {"source": "translation"}


def test_trl_conversational_prompt_keeps_its_system_turn(client_for, admin, project):
    imported(client_for, admin, project, "trl_conversational.jsonl")
    task = task_by_user_turn(project, "Why do leaves change color in autumn?")
    assert [m["role"] for m in task.prompt.messages] == ["system", "user"]
    [label] = labels_of(task)
    assert ranked(label) == [["Chlorophyll breaks down, revealing yellow and orange pigments."],
                             ["Because trees get cold and paint themselves."]]


def test_trl_implicit_prompt_is_the_shared_prefix(client_for, admin, project):
    imported(client_for, admin, project, "trl_implicit.jsonl")
    cat = task_by_user_turn(project, "Something longer, please.")
    assert [m["content"] for m in cat.prompt.messages] == [
        "Suggest a name for a cat.", "How about Miso?", "Something longer, please."
    ]
    assert [m["role"] for m in cat.prompt.messages] == ["user", "assistant", "user"]
    assert ranked(labels_of(cat)[0]) == [["Sir Reginald Whiskerton."], ["Cat."]]
    # Strings: the shared text, cut before the space where the answers part (as TRL's extract_prompt).
    paris = task_by_user_turn(project, "The capital of France is")
    assert shown(paris) == [" Paris.", " Lyon."]


def test_trl_unpaired_rows_make_a_comparison_a_demonstration_and_an_unlabelled_task(client_for, admin, project):
    imported(client_for, admin, project, "trl_unpaired.jsonl")
    grass = task_by_user_turn(project, "The grass is")
    assert grass.kind == "comparison"
    assert ranked(labels_of(grass)[0]) == [[" green."], [" purple."]]
    haiku = task_by_user_turn(project, "Write a haiku about rain.")
    [demo] = labels_of(haiku)
    assert (haiku.kind, demo.kind, demo.text) == (
        "demonstration", "demonstration", "Soft rain on the roof / the garden drinks in silence / puddles hold the sky"
    )
    water = task_by_user_turn(project, "What is the boiling point of water at sea level?")
    assert (water.kind, water.done, water.status) == ("demonstration", 0, "open")
    assert water.prompt.metadata == {"undesirable_completions": ["About 50 degrees Celsius."]}


@pytest.mark.parametrize("fmt", [None, "trl"])
def test_trl_prompt_only_rows_become_demonstration_tasks(client_for, admin, project, fmt):
    body = imported(client_for, admin, project, "trl_prompt_only.jsonl", **({"format": fmt} if fmt else {}))
    assert body["created_tasks"] == 3
    assert set(Task.objects.filter(project=project).values_list("kind", "done")) == {("demonstration", 0)}
    hamlet = task_by_user_turn(project, "Summarize the plot of Hamlet.")
    assert hamlet.prompt.messages[0] == {"role": "system", "content": "You are terse."}


def test_hh_rlhf_shared_turns_are_the_prompt_and_the_last_turns_the_responses(client_for, admin, project):
    body = imported(client_for, admin, project, "hh_rlhf.jsonl")
    # The fourth row's answers are the same text: left out, with a note naming its line.
    assert body["notes"] == [{"line": 4, "message": "chosen and rejected are the same text, so there is nothing "
                                                    "to compare; left out"}]
    bread = task_by_user_turn(project, "Yes, I do.")
    assert bread.prompt.messages == [
        {"role": "user", "content": "How do I bake bread at home?"},
        {"role": "assistant", "content": "You will need flour, water, salt and yeast. Do you have all of those?"},
        {"role": "user", "content": "Yes, I do."},
    ]
    [label] = labels_of(bread)
    assert ranked(label) == [
        ["Great. Mix them, knead for ten minutes, let the dough rise for an hour, shape it, and bake at 230°C "
         "for about 30 minutes."],
        ["Buy bread instead."],
    ]


def test_ultrafeedback_raw_ranks_completions_by_their_ratings_and_ties_equal_ones(client_for, admin, project):
    imported(client_for, admin, project, "ultrafeedback_raw.jsonl")
    tips = task_by_user_turn(project, "Give three tips for staying healthy.")
    assert len(shown(tips)) == 4
    assert ranked(labels_of(tips)[0]) == [
        ["1. Eat a balanced diet. 2. Exercise regularly. 3. Sleep seven to nine hours."],
        ["Eat vegetables, walk daily, and drink water."], ["Eat, sleep."], ["Stay healthy by being healthy."],
    ]
    assert tips.prompt.metadata["ultrafeedback"]["scores"] == [5.0, 4.25, 2.5, 1.5]
    assert tips.prompt.metadata["ultrafeedback"]["models"][0] == "gpt-4"
    sentiment = task_by_user_turn(project, "Classify the sentiment of: 'I loved this film.'")
    assert ranked(labels_of(sentiment)[0]) == [["Positive.", "The sentiment is positive."]]


def test_ultrafeedback_binarized_keeps_prompt_id_and_scores(client_for, admin, project):
    imported(client_for, admin, project, "ultrafeedback_binarized.jsonl")
    spider = task_of(project, "5c3f1d7a8b")
    assert spider.prompt.messages == [{"role": "user", "content": "How many legs does a spider have?"}]
    assert ranked(labels_of(spider)[0]) == [["A spider has eight legs."], ["Six, like all insects."]]
    assert spider.prompt.metadata == {"ultrafeedback": {"score_chosen": 9.0, "score_rejected": 3.0}}
    slogan = task_of(project, "9e2b44a0c1")  # equal scores: a tie, which no export turns into a pair
    assert ranked(labels_of(slogan)[0]) == [["Fresh from our oven to your table.", "We sell bread."]]


def test_oasst_flat_messages_keep_the_tree_ranking_and_leave_deleted_replies_out(client_for, admin, project):
    imported(client_for, admin, project, "oasst_messages.jsonl")
    root = task_of(project, "6ab24d72-0181-4594-a9cd-deaf170242fb")
    assert root.kind == "comparison"
    assert "spam spam spam" not in shown(root)
    assert [group[0][:30] for group in ranked(labels_of(root)[0])] == [
        "A monopsony is a market struct", "Monopsony is the buyer-side tw", "Monopsony refers to a market w",
    ]
    child = task_of(project, "18145bf4-37fd-4ac0-80f5-6108b5f2b365")
    assert [m["role"] for m in child.prompt.messages] == ["user", "assistant", "user"]
    assert child.prompt.messages[1]["content"].startswith("A monopsony is a market structure")
    [demo] = labels_of(child)
    assert (child.kind, demo.text) == (
        "demonstration", "Imagine only one shop in town buys lemonade: it can pay you whatever it likes."
    )
    spanish = task_of(project, "9f3c0b12-77aa-4bd1-8d3e-0c1f5e2a9b44")
    assert spanish.prompt.metadata["lang"] == "es"
    assert ranked(labels_of(spanish)[0]) == [["La capital de Australia es Canberra."], ["Sídney."]]


def test_oasst_nested_trees_become_the_same_tasks_with_ties(client_for, admin, project):
    imported(client_for, admin, project, "oasst_trees.jsonl")
    books = task_of(project, "7a6b")
    assert ranked(labels_of(books)[0]) == [
        ["'Naked Statistics' by Charles Wheelan explains the ideas with humour.",
         "'The Art of Statistics' by David Spiegelhalter is clear and full of real examples."],
        ["Read a textbook."],
    ]
    follow_up = task_of(project, "3c2d")
    assert follow_up.kind == "demonstration"
    assert [m["content"] for m in follow_up.prompt.messages][-1] == "Which one is faster?"


def test_label_studio_pairwise_gives_one_label_per_annotation_that_was_not_cancelled(client_for, admin, project):
    imported(client_for, admin, project, "label_studio_pairwise.json")
    hole = task_of(project, "101")
    assert (hole.done, hole.status) == (2, "done")
    assert [ranked(a)[0][0][:20] for a in labels_of(hole)] == ["A black hole is a re"] * 2
    happy = task_of(project, "102")
    [label] = labels_of(happy)  # the cancelled annotation is no label
    assert ranked(label) == [["Joyful."], ["Sad."]]
    energy = task_of(project, "103")
    assert (energy.kind, energy.done, energy.status, shown(energy)) == ("comparison", 0, "open", ["Solar power.", "Coal."])


def test_label_studio_ranker_orders_the_items(client_for, admin, project):
    imported(client_for, admin, project, "label_studio_ranking.json")
    title = task_of(project, "201")
    assert ranked(labels_of(title)[0]) == [
        ["My Second Career Started With Hello, World"], ["Never Too Late: Learning to Code at Forty"], ["Code"]
    ]


# Hidden labels, provenance in exports, and labelers' work ----------------------------------------


def test_hidden_labels_count_toward_nothing_and_labelers_label_the_task_again(client_for, admin, project):
    from annotation import services

    body = imported(client_for, admin, project, "hh_rlhf.jsonl", labels="hide")
    assert (body["labels"], body["created_labels"]) == ("hide", 3)
    assert set(Task.objects.filter(project=project).values_list("done", "status")) == {(0, "open")}
    assert set(Annotation.objects.values_list("external_hidden", flat=True)) == {True}
    labeler = member(project)
    assert services.task_claim_next(project=project, labeler=labeler) is not None
    client = client_for(admin)
    for fmt in ("raw", "preference"):
        response = client.get(f"/api/projects/{project.pk}/export/", {"format": fmt})
        assert b"".join(response.streaming_content) == b""


def test_a_labelers_label_adds_to_an_imported_one(client_for, admin):
    import uuid

    from annotation import services

    project = ProjectFactory(overlap=2)
    admin = member(project, role=Membership.Role.ADMIN)
    imported(client_for, admin, project, "trl_standard.jsonl")
    assert set(Task.objects.filter(project=project).values_list("done", "status")) == {(1, "open")}
    labeler = member(project)
    task = services.task_claim_next(project=project, labeler=labeler)
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": [[i] for i in ids], "strength": "better"})
    task.refresh_from_db()
    assert (task.done, task.status) == (2, "done")


def export_lines(client, project, **params) -> list[dict]:
    response = client.get(f"/api/projects/{project.pk}/export/", params)
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_exports_keep_the_provenance_and_filter_on_it(client_for, admin, project):
    import uuid

    from annotation import services

    imported(client_for, admin, project, "label_studio_pairwise.json")
    labeler = member(project)
    task = services.task_claim_next(project=project, labeler=labeler)  # the one unlabelled task
    assert task.prompt.external_id == "103"
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    services.annotation_submit(
        task=task, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": [[i] for i in ids], "strength": "better"}
    )
    client = client_for(admin)

    raw = export_lines(client, project, format="raw")
    assert [(row["external_source"], row["labeler"] is None) for row in raw] == [("label-studio", True)] * 3 + [
        (None, False)
    ]
    assert len(export_lines(client, project, format="preference")) == 4
    only = export_lines(client, project, format="preference", external="only")
    assert {row["chosen"][0]["content"] for row in only} == {
        "Joyful.", "A black hole is a region of space where gravity is so strong that nothing, not even light, can "
        "escape. It forms when a massive star collapses under its own weight.",
    }
    assert len(only) == 3
    assert len(export_lines(client, project, format="preference", external="exclude")) == 1
    bad = client.get(f"/api/projects/{project.pk}/export/", {"format": "preference", "external": "some"})
    assert (bad.status_code, bad.json()["field"]) == (400, "external")


def test_imported_labels_are_no_labelers_work(client_for, admin, project):
    from annotation.dashboard import dashboard_labelers
    from annotation.reliability.judgments import judged_annotations

    imported(client_for, admin, project, "label_studio_pairwise.json")
    tasks = list(Task.objects.filter(project=project).values_list("pk", flat=True))
    assert Annotation.objects.filter(task_id__in=tasks).count() == 3
    assert judged_annotations(task_ids=tasks).count() == 0  # reliability, competence and agreement read these
    assert dashboard_labelers(project=project) == []
    admin_page = client_for(admin).get(f"/api/projects/{project.pk}/")
    assert admin_page.status_code == 200


def test_the_dashboards_task_page_names_the_source(client, admin, project, client_for):
    imported(client_for, admin, project, "hh_rlhf.jsonl")
    client.force_login(admin)
    task = Task.objects.filter(project=project).first()
    page = client.get(f"/projects/{project.pk}/tasks/{task.pk}/")
    assert page.status_code == 200
    assert "hh-rlhf (imported)" in page.content.decode()


# Bad input: a 400 naming the line or the field, and nothing stored ------------------------------


def nothing_stored(project) -> bool:
    return not Prompt.objects.filter(project=project).exists() and not Annotation.objects.exists()


@pytest.mark.parametrize(
    "name, content, line, error",
    [
        ("hh.jsonl", b'{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go"}\n'
                     b'{"chosen": "\\n\\nHuman: A\\n\\nAssistant: B\\n\\nHuman: C\\n\\nAssistant: D", '
                     b'"rejected": "\\n\\nHuman: A\\n\\nAssistant: X"}\n',
         2, "chosen and rejected must share every turn but their last, an assistant's; chosen has 3 turns after "
            "the shared prefix"),
        ("hh.jsonl", b'{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go"}\n'
                     b'{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello", "rejected": 7}\n',
         2, "rejected must be a string"),
        ("trl.jsonl", b'{"prompt": "Hi", "chosen": "a", "rejected": "b"}\n{"prompt": "Hi", "chosen": "a"}\n',
         2, "a preference row needs both chosen and rejected; rejected is missing"),
        ("trl.jsonl", b'{"prompt": "Hi", "chosen": "a", "rejected": "b"}\n{"prompt": "Yo", "chosen": "", "rejected": "b"}\n',
         2, "responses[0] is empty"),
        ("uf.jsonl", b'{"instruction": "Hi", "completions": [{"response": "a"}, {"model": "m"}]}\n',
         1, "completions[1] must be an object with a response"),
        ("oasst.jsonl", b'{"message_id": "a", "parent_id": null, "message_tree_id": "a", "role": "prompter", "text": "Q"}\n'
                        b'{"message_id": "b", "parent_id": null, "message_tree_id": "b", "role": "prompter", "text": "R"}\n'
                        b'{"message_id": "c", "parent_id": "a", "message_tree_id": "a", "role": "assistant", "text": "S"}\n',
         3, "tree 'a' went on earlier: a tree's messages must be on consecutive lines"),
        ("oasst.jsonl", b'{"message_id": "a", "parent_id": null, "message_tree_id": "a", "role": "robot", "text": "Q"}\n',
         1, 'the message.role must be prompter or assistant, not "robot"'),
        ("ls.json", b'[\n  {"id": 1, "data": {"prompt": "P", "answer1": "a", "answer2": "b"}, "annotations": []},\n'
                    b'  {"id": 2, "data": {"prompt": "P", "answer1": "a", "answer2": "b"},\n'
                    b'   "annotations": [{"result": [{"type": "pairwise", "value": {"selected": "up"}}]}]}\n]\n',
         3, "annotations[0]: a pairwise value's selected must be left or right"),
        ("ls.json", b'[\n  {"id": 1, "data": {"prompt": "P", "answer1": "a", "answer2": "b"}, "annotations": []},\n'
                    b'  {"id": 2, "data": {"prompt": "P"\n]\n',
         4, None),
        ("ls.json", b'[{"id": 1, "data": {"prompt": "P", "items": [{"id": "a", "body": "x"}, {"id": "b", "body": "y"}]},'
                    b' "annotations": [{"result": [{"type": "ranker", "value": {"ranker": {"rank": ["a"]}}}]}]}]',
         1, "the label's ranking must place every response once; it leaves out 1"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_imported(client_for, admin, project, name, content, line, error):
    response = upload(client_for(admin), project, name, content)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "file"
    assert body["errors"][0]["line"] == line
    if error is not None:
        assert body["errors"][0]["error"] == error
    else:
        assert body["errors"][0]["error"].startswith("malformed JSON")
    assert nothing_stored(project)


def test_a_named_format_that_does_not_fit_the_file_names_every_line(client_for, admin, project):
    response = upload(client_for(admin), project, "trl_standard.jsonl", format="hh-rlhf")
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["errors"]] == [1, 2, 3]
    assert nothing_stored(project)


@pytest.mark.parametrize(
    "fields, field",
    [({"format": "parquet"}, "format"), ({"labels": "maybe"}, "labels"), ({"source": "<script>"}, "source"),
     ({"source": "x" * 101}, "source")],
)
def test_bad_options_are_a_400_naming_the_field(client_for, admin, project, fields, field):
    response = upload(client_for(admin), project, "hh_rlhf.jsonl", **fields)
    assert (response.status_code, response.json()["field"]) == (400, field)
    assert nothing_stored(project)


def test_the_import_page_takes_a_format_a_source_and_hidden_labels(client, admin, project):
    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/import/")
    assert 'name="format"' in page.content.decode() and 'value="label-studio"' in page.content.decode()
    upload_file = SimpleUploadedFile("export.json", (FIXTURES / "label_studio_ranking.json").read_bytes())
    page = client.post(
        f"/projects/{project.pk}/import/",
        {"file": upload_file, "format": "label-studio", "source": "vendor-a", "hide_labels": "on"},
    )
    assert page.status_code == 200
    assert 'data-count="created_labels">2<' in page.content.decode()
    assert set(Annotation.objects.values_list("external_source", "external_hidden")) == {("vendor-a", True)}


def test_the_export_page_offers_the_imported_labels_filter(client, admin, project):
    client.force_login(admin)
    page = client.get(f"/projects/{project.pk}/export/").content.decode()
    assert '<select name="external">' in page and '<option value="exclude">' in page


@pytest.mark.parametrize(
    "content, error",
    [
        (b'{"message_id": ["a"], "parent_id": null, "message_tree_id": "a", "role": "prompter", "text": "Q"}\n',
         "the message.message_id must be a string"),
        (b'{"message_tree_id": "t", "prompt": {"message_id": "t", "role": "prompter", "text": "Q", "replies": '
         b'[{"message_id": "r", "role": "assistant", "text": "A", "rank": "first"}]}}\n',
         "prompt.replies[0].rank must be a whole number (0 is the best) or null"),
        (b'{"prompt": "Hi", "chosen": "a", "rejected": "b", "metadata": [1]}\n', "metadata must be a JSON object"),
        (b'{"chosen": [{"role": "user", "content": "Hi"}], "rejected": [{"role": "user", "content": "Hi"}]}\n',
         "chosen and rejected must share every turn but their last, an assistant's; chosen has 1 turns after the "
         "shared prefix"),
        (b'{"data": {"prompt": "P", "answer1": "a", "answer2": "b"}, "annotations": 5}\n', "annotations must be a list"),
        (b'{"instruction": ["x"], "completions": []}\n', "instruction must be a string"),
    ],
)
def test_odd_values_are_line_errors_not_server_errors(client_for, admin, project, content, error):
    response = upload(client_for(admin), project, "odd.jsonl", content)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 1, "error": error}]
    assert nothing_stored(project)


def test_oasst_ranks_written_as_floats_are_whole_numbers(client_for, admin, project):
    rows = [
        {"message_id": "q", "parent_id": None, "message_tree_id": "q", "role": "prompter", "text": "Q?"},
        {"message_id": "a", "parent_id": "q", "message_tree_id": "q", "role": "assistant", "text": "Worse.", "rank": 1.0},
        {"message_id": "b", "parent_id": "q", "message_tree_id": "q", "role": "assistant", "text": "Better.", "rank": 0.0},
    ]
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    assert upload(client_for(admin), project, "oasst.jsonl", body).status_code == 200
    assert ranked(labels_of(task_of(project, "q"))[0]) == [["Better."], ["Worse."]]


def test_importing_the_same_file_again_adds_no_label(client_for, admin, project):
    first = imported(client_for, admin, project, "oasst_messages.jsonl")
    again = imported(client_for, admin, project, "oasst_messages.jsonl")
    assert (again["created_prompts"], again["created_labels"], again["skipped_existing"]) == (
        0, 0, first["created_prompts"]
    )
    assert Annotation.objects.filter(project=project).count() == first["created_labels"]


def test_the_import_command_takes_a_format_a_source_and_hidden_labels(project):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(
        "import_prompts", project.slug, str(FIXTURES / "hh_rlhf.jsonl"), "--format", "hh-rlhf",
        "--source", "anthropic", "--hide-labels", stdout=out,
    )
    assert "Imported 3 labels from anthropic (hh-rlhf, hidden)." in out.getvalue()
    assert set(Annotation.objects.values_list("external_source", "external_hidden")) == {("anthropic", True)}


def test_consensus_counts_each_source_as_one_worker(client_for, admin, project):
    imported(client_for, admin, project, "label_studio_pairwise.json")
    rows = export_lines(client_for(admin), project, format="preference", consensus="margin")
    assert {row["chosen"][0]["content"] for row in rows} == {
        "Joyful.", "A black hole is a region of space where gravity is so strong that nothing, not even light, can "
        "escape. It forms when a massive star collapses under its own weight.",
    }


def test_the_progress_counters_add_up_what_an_import_wrote(client_for, admin, project):
    """Inserted tasks are counted per statement (migration 0013); the sums match a scan of the tasks."""
    from tests.annotation.test_progress_counters import counted, scanned

    imported(client_for, admin, project, "label_studio_pairwise.json")
    imported(client_for, admin, project, "oasst_messages.jsonl", labels="hide")
    assert counted(project) == scanned(project)
    assert counted(project)["comparison"][2] == 3  # (tasks, done, annotations, required): hidden labels count nowhere
