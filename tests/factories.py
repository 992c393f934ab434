"""factory_boy factories shared by every test."""

import factory
from django.contrib.auth import get_user_model

from annotation.models import Membership, Project, Prompt, Response, Task, TaskResponse


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-1234")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    guidelines = "Be **helpful** and honest."
    overlap = 1
    lease_seconds = 600


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.LABELER


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])
    external_id = factory.Sequence(lambda n: f"p{n}")


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"Answer {n}.")
    source = Response.Source.IMPORT


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    kind = Task.Kind.DEMONSTRATION
    required = factory.SelfAttribute("project.overlap")


def comparison_task(*, project, texts=("First answer.", "Second answer."), authors=None, **kwargs) -> Task:
    """A comparison task showing one response per text, in the given display order."""
    task = TaskFactory(project=project, kind=Task.Kind.COMPARISON, **kwargs)
    authors = authors or [None] * len(texts)
    for position, (text, author) in enumerate(zip(texts, authors)):
        source = Response.Source.HUMAN if author else Response.Source.IMPORT
        response = ResponseFactory(prompt=task.prompt, text=text, author=author, source=source)
        TaskResponse.objects.create(task=task, response=response, position=position)
    return task


def member(project, role=Membership.Role.LABELER, **user_kwargs):
    user = UserFactory(**user_kwargs)
    MembershipFactory(project=project, user=user, role=role)
    return user


def project_creator(user):
    """Grant `user` the platform permission to create projects (as `manage.py grant_project_creator` does)."""
    from annotation.services import project_creator_set

    project_creator_set(user=user)
    return user


def model_version(**fields):
    """A registered model whose files exist: a config.json at its directory (kept if already there).

    The platform refuses to start jobs on a model whose directory is gone, so a test model needs one.
    Hub ids are left alone (the worker reads them from its own cache).
    """
    from pathlib import Path

    from training import registry
    from training.models import ModelVersion

    model = ModelVersion.objects.create(**fields)
    if model.source != ModelVersion.Source.HUB:
        folder = Path(registry.model_location(model))
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "config.json").exists():
            (folder / "config.json").write_text("{}")
    return model


def gold_comparison_task(
    *, project, texts=("Right answer.", "Wrong answer."), best=0, explanation="", **kwargs
) -> Task:
    """A gold comparison whose answer is the response at index `best` of `texts`, the others tied below it."""
    task = comparison_task(project=project, texts=texts, **kwargs)
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    rest = [pk for index, pk in enumerate(ids) if index != best]
    task.is_gold = True
    task.gold = {"ranking": [[ids[best]], rest], "explanation": explanation}
    task.save(update_fields=["is_gold", "gold"])
    return task
