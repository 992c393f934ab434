"""The Hugging Face dataset directory: it loads with `datasets`, its card parses with the right counts and license."""

import io
import tarfile

import pytest
from django.core.management import call_command

from annotation.models import Membership, Task
from tests.annotation.test_export import claim_and_submit, rank
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(name="Helpful answers", slug="helpful")


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN, username="ada", email="ada@example.com")


@pytest.fixture
def labelled(project):
    """Two labelers: ann writes two demonstrations and ranks two pairs, bob ranks one pair."""
    ann = member(project, username="ann", email="ann@example.com")
    bob = member(project, username="bob", email="bob@example.com")
    for text in ("Say hi.", "Name a colour."):
        TaskFactory(project=project, prompt=PromptFactory(project=project, messages=[{"role": "user", "content": text}]))
    for _ in range(3):
        comparison_task(project=project)
    claim_and_submit(project, ann, {"text": "Hi."}, kind=Task.Kind.DEMONSTRATION)
    claim_and_submit(project, ann, {"text": "Blue."}, kind=Task.Kind.DEMONSTRATION)
    rank(project, ann, [["First answer."], ["Second answer."]], strength="better")
    rank(project, ann, [["Second answer."], ["First answer."]], strength="much_better")
    rank(project, bob, [["First answer."], ["Second answer."]], strength="slightly_better")
    return ann, bob


def extract(content: bytes, into) -> "Path":  # noqa: F821
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        tar.extractall(into, filter="data")
    (folder,) = [p for p in into.iterdir() if p.is_dir()]
    return folder


def download(client, project, **params) -> bytes:
    response = client.get(f"/api/projects/{project.pk}/export/dataset/", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-tar"
    return b"".join(response.streaming_content)


def test_preference_directory_loads_with_datasets_and_its_card_parses(client_for, project, admin, labelled, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    folder = extract(download(client_for(admin), project, format="preference", license="cc-by-4.0"), tmp_path)
    assert folder.name == "helpful-preference-dataset"
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train-00000-of-00001.parquet"]

    loaded = datasets.load_dataset(str(folder))
    train = loaded["train"]
    assert list(loaded) == ["train"] and train.num_rows == 3
    assert set(train.column_names) == {"prompt", "chosen", "rejected", "margin"}
    assert train[0]["chosen"] == [{"role": "assistant", "content": "First answer."}]
    assert train[0]["prompt"][0]["role"] == "user"
    assert sorted(train["margin"]) == [0.25, 0.5, 1.0]

    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert card.data.task_categories == ["text-generation"]
    assert card.data.configs[0]["data_files"][0]["path"] == "data/train-*"
    assert card.data.dataset_info["splits"][0]["num_examples"] == 3
    assert [f["name"] for f in card.data.dataset_info["features"]] == ["prompt", "chosen", "rejected", "margin"]
    text = card.text
    assert "3 rows in 1 parquet file" in text
    assert "`helpful`" in text and "exported at" in text
    ann, bob = labelled
    from annotation.exporters import labeler_pseudonym

    assert f"| `{labeler_pseudonym(ann.pk)}` | 2 |" in text and f"| `{labeler_pseudonym(bob.pk)}` | 1 |" in text
    for secret in ("ann@example.com", "bob@example.com", "| `ann`", "| `bob`"):
        assert secret not in text
    import hashlib

    digest = hashlib.sha256((folder / "data/train-00000-of-00001.parquet").read_bytes()).hexdigest()
    assert digest in text


def test_sft_directory_with_filters_states_them_and_defaults_the_license(client_for, project, admin, labelled,
                                                                         tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    ann, _ = labelled
    folder = extract(download(client_for(admin), project, format="sft", labeler="ann", exclude_gold="true"), tmp_path)
    train = datasets.load_dataset(str(folder))["train"]
    assert train.num_rows == 2
    assert train[0]["messages"][-1] == {"role": "assistant", "content": "Hi."}
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "other"
    from annotation.exporters import labeler_pseudonym

    assert f"`labeler`: `{labeler_pseudonym(ann.pk)}`" in card.text and "`exclude_gold`: `True`" in card.text


def test_shards_are_split_and_all_load(project, labelled, tmp_path, monkeypatch):
    import datasets

    from annotation import hf_dataset

    monkeypatch.setattr(hf_dataset, "SHARD_ROWS", 2)
    monkeypatch.setattr(hf_dataset, "BATCH_ROWS", 1)
    summary = hf_dataset.dataset_dir_write(project=project, fmt="preference", filters=None, license=None,
                                           folder=tmp_path)
    assert [s["path"] for s in summary.shards] == ["data/train-00000-of-00002.parquet",
                                                   "data/train-00001-of-00002.parquet"]
    assert [s["rows"] for s in summary.shards] == [2, 1]
    assert datasets.load_dataset(str(tmp_path))["train"].num_rows == 3


def test_an_export_without_rows_is_a_400_since_datasets_cannot_load_it(client_for, project, admin, labelled):
    response = client_for(admin).get(f"/api/projects/{project.pk}/export/dataset/",
                                     {"format": "sft", "labeler": "bob"})
    assert response.status_code == 400
    assert response.json()["field"] == "format" and "keeps no rows with these filters" in str(response.json())


@pytest.mark.parametrize("params, field", [
    ({"format": "raw"}, "format"),
    ({"format": "sft", "license": "Not A License!"}, "license"),
    ({"format": "sft", "consensus": "margin"}, "consensus"),
    ({"format": "preference", "min_competence": "2"}, "min_competence"),
])
def test_bad_input_is_a_400_naming_the_field(client_for, project, admin, params, field):
    response = client_for(admin).get(f"/api/projects/{project.pk}/export/dataset/", params)
    assert response.status_code == 400
    assert field in str(response.json())


def test_a_labeler_cannot_export_the_directory_and_an_outsider_sees_nothing(client_for, project, labelled):
    ann, _ = labelled
    assert client_for(ann).get(f"/api/projects/{project.pk}/export/dataset/", {"format": "sft"}).status_code == 403
    outsider = member(ProjectFactory(), role=Membership.Role.ADMIN)
    assert client_for(outsider).get(f"/api/projects/{project.pk}/export/dataset/",
                                    {"format": "sft"}).status_code == 404


def test_the_command_writes_the_archive(project, labelled, tmp_path):
    import datasets

    target = tmp_path / "out.tar"
    call_command("export_project", "helpful", "--format", "preference", "--hf-dataset", "--license", "mit",
                 "--output", str(target))
    folder = extract(target.read_bytes(), tmp_path / "x")
    assert datasets.load_dataset(str(folder))["train"].num_rows == 3
