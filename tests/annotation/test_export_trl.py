"""The exports load with `datasets` and train one step of TRL's trainers on a tiny local model."""

import json
import math
import random
import uuid

import pytest

from annotation import services
from annotation.models import Membership, Task
from tests.factories import ProjectFactory, PromptFactory, TaskFactory, comparison_task, member

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

WORDS = "the a cat dog model answer question prime number river blue green quick slow kind helpful honest".split()
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A byte-level BPE tokenizer trained here on generated sentences, and a 2-layer Llama of width 32."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(0)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(300)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sentences, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _annotate(project, labeler, data):
    task = services.task_claim_next(project=project, labeler=labeler)
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data, time_spent_ms=500)
    return task


def _export(client, project, fmt, path):
    response = client.get(f"/api/projects/{project.pk}/export/", {"format": fmt})
    assert response.status_code == 200
    path.write_bytes(b"".join(response.streaming_content))
    return path


def _load(path, tmp_path):
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


def test_preference_export_trains_a_reward_model_step(tiny_model_dir, tmp_path, client_for):
    from trl import RewardConfig, RewardTrainer

    project = ProjectFactory()
    admin = member(project, role=Membership.Role.ADMIN)
    labeler = member(project)
    for i in range(3):
        comparison_task(project=project, texts=(f"the kind answer {i}.", f"the slow dog {i}.", f"a blue river {i}."))
    for _ in range(3):
        task = services.task_claim_next(project=project, labeler=labeler)
        ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
        services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"ranking": [[i] for i in ids]})

    dataset = _load(_export(client_for(admin), project, "preference", tmp_path / "pref.jsonl"), tmp_path)
    assert len(dataset) == 9  # 3 rankings of 3 give 3 pairs each
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected", "margin"}

    args = RewardConfig(
        output_dir=str(tmp_path / "rm"), max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True,
        save_strategy="no", logging_steps=1, max_length=128, dataloader_num_workers=0,
    )
    trainer = RewardTrainer(model=tiny_model_dir, args=args, train_dataset=dataset)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    output = trainer.train()
    assert output.global_step == 1
    assert math.isfinite(output.training_loss)
    after = list(trainer.model.parameters())
    assert any(not b.equal(a.detach()) for b, a in zip(before, after)), "one step changed no parameter"


def test_sft_export_trains_an_sft_step(tiny_model_dir, tmp_path, client_for):
    from trl import SFTConfig, SFTTrainer

    project = ProjectFactory()
    admin = member(project, role=Membership.Role.ADMIN)
    labeler = member(project)
    for i in range(4):
        prompt = PromptFactory(
            project=project,
            messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"the question {i}?"}],
        )
        TaskFactory(project=project, prompt=prompt, kind=Task.Kind.DEMONSTRATION)
    for i in range(4):
        _annotate(project, labeler, {"text": f"the helpful honest answer {i}."})

    path = _export(client_for(admin), project, "sft", tmp_path / "sft.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    dataset = _load(path, tmp_path)
    assert len(dataset) == 4

    args = SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True,
        save_strategy="no", logging_steps=1, max_length=128, dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=tiny_model_dir, args=args, train_dataset=dataset)
    output = trainer.train()
    assert output.global_step == 1
    assert math.isfinite(output.training_loss)
