"""Every public format's fixture imports into one project; its labels export as TRL preference rows
that `datasets` loads and that train one DPO step of a tiny local model."""

import json
import math
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Membership
from tests.annotation.test_export_trl import tiny_model_dir  # noqa: F401  (a module-scoped fixture)
from tests.factories import ProjectFactory, member

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
# Ordered pairs each fixture's labels give (a ranking of K: K-choose-2 less tied pairs; ties and
# demonstrations none), worked out by hand from the files.
PAIRS = {
    "trl_standard.jsonl": 3, "trl_conversational.jsonl": 2, "trl_implicit.jsonl": 3, "trl_unpaired.jsonl": 1,
    "trl_prompt_only.jsonl": 0, "hh_rlhf.jsonl": 3, "ultrafeedback_raw.jsonl": 6, "ultrafeedback_binarized.jsonl": 1,
    "oasst_messages.jsonl": 4, "oasst_trees.jsonl": 3, "label_studio_pairwise.json": 3, "label_studio_ranking.json": 6,
}


def test_imported_labels_export_as_preference_rows_that_train_a_dpo_step(tiny_model_dir, tmp_path, client_for):  # noqa: F811
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    assert set(PAIRS) == {path.name for path in FIXTURES.iterdir()}  # every fixture is counted here
    project = ProjectFactory()
    client = client_for(member(project, role=Membership.Role.ADMIN))
    for name in sorted(PAIRS):
        response = client.post(
            f"/api/projects/{project.pk}/import/",
            {"file": SimpleUploadedFile(name, (FIXTURES / name).read_bytes())}, format="multipart",
        )
        assert response.status_code == 200, (name, response.json())

    export = client.get(f"/api/projects/{project.pk}/export/", {"format": "preference", "external": "only"})
    path = tmp_path / "preference.jsonl"
    path.write_bytes(b"".join(export.streaming_content))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == sum(PAIRS.values())
    bread = next(row for row in rows if row["prompt"][-1]["content"] == "Yes, I do.")
    assert [m["role"] for m in bread["prompt"]] == ["user", "assistant", "user"]  # HH-RLHF's multi-turn prompt
    assert bread["rejected"] == [{"role": "assistant", "content": "Buy bread instead."}]

    dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))
    dataset = dataset.remove_columns(["margin"])
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True,
        save_strategy="no", logging_steps=1, max_length=128, dataloader_num_workers=0, beta=0.1,
    )
    trainer = DPOTrainer(model=tiny_model_dir, args=args, train_dataset=dataset)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    output = trainer.train()
    assert output.global_step == 1
    assert math.isfinite(output.training_loss)
    after = list(trainer.model.parameters())
    assert any(not b.equal(a.detach()) for b, a in zip(before, after)), "one DPO step changed no parameter"
