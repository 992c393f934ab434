"""Build the default `tiny` base model, offline, on a CPU, in Hugging Face format.

    python -m training.pipelines.base_model --output DIR [--max-steps N] [--seconds S]

1. Train a byte-level BPE tokenizer (`tokenizers`) on the bundled text in data/.
2. Give it a chat template with role markers and `{% generation %}` markers (so TRL's
   assistant_only_loss works) and pad/eos tokens.
3. Make a small Llama-style config (about 1M parameters) with pad_token_id set, so that
   AutoModelForSequenceClassification(num_labels=1) loads from the same dir for reward models.
4. Pretrain it briefly on the bundled text and the chat-rendered dialogues.
5. save_pretrained the model and the tokenizer: AutoModelForCausalLM / AutoTokenizer load it.

Prints JSON-lines progress like the pipelines (see common.py).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

from training.pipelines.common import emit

DATA_DIR = Path(__file__).resolve().parent / "data"

SYSTEM, USER, ASSISTANT, END, PAD = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, END, SYSTEM, USER, ASSISTANT]

# <|user|>Hello<|end|><|assistant|>Hi.<|end|>  -- the assistant's content and its end token are
# inside {% generation %} so that the loss mask covers them (and the model learns to stop).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

MODEL_SHAPE = dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=4, max_position_embeddings=512)


def bundled_texts() -> tuple[list[str], list[list[dict]]]:
    """(plain text paragraphs, chat dialogues) shipped in data/."""
    paragraphs = [line for line in (DATA_DIR / "corpus.txt").read_text().splitlines() if line.strip()]
    dialogues = [json.loads(line)["messages"]
                 for line in (DATA_DIR / "dialogues.jsonl").read_text().splitlines() if line.strip()]
    return paragraphs, dialogues


def train_tokenizer(texts: list[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer wrapped as a transformers fast tokenizer, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=END, pad_token=PAD, bos_token=None, unk_token=None,
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, **MODEL_SHAPE,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def token_stream(tokenizer, paragraphs, dialogues, seed: int) -> list[int]:
    docs = [p + "\n" for p in paragraphs]
    docs += [tokenizer.apply_chat_template(d, tokenize=False) for d in dialogues]
    random.Random(seed).shuffle(docs)
    ids: list[int] = []
    for doc in docs:
        ids.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
    return ids


def pretrain(model, ids: list[int], *, max_steps: int, seconds: float | None, batch_size: int = 16,
             block_size: int = 128, learning_rate: float = 3e-3, seed: int = 0, log_every: int = 20) -> dict:
    """Next-token pretraining on random blocks of the token stream; cosine schedule, AdamW."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    data = torch.tensor(ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, min(50, max_steps // 10))
    start, first_loss, loss_value, step = time.time(), None, float("nan"), 0
    emit("start", kind="base_model", step=0, total=max_steps, resumed_from=None, device=device, bf16=False)
    for step in range(1, max_steps + 1):
        # Cosine decay over whichever budget runs out first: steps or seconds.
        done = step / max_steps if seconds is None else max(step / max_steps, (time.time() - start) / seconds)
        lr = learning_rate * min(step / warmup, 0.5 * (1 + math.cos(math.pi * min(done, 1.0))) * 0.9 + 0.1)
        for group in opt.param_groups:
            group["lr"] = lr
        offsets = torch.randint(0, len(data) - block_size - 1, (batch_size,), generator=gen)
        batch = torch.stack([data[o:o + block_size] for o in offsets]).to(device)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()
        first_loss = loss_value if first_loss is None else first_loss
        if step % log_every == 0 or step in (1, max_steps):
            emit("progress", step=step, total=max_steps, metrics={"loss": loss_value, "learning_rate": lr})
        if seconds is not None and time.time() - start > seconds:
            break
    model.eval().to("cpu")
    return {"steps": step, "first_loss": first_loss, "loss": loss_value, "seconds": time.time() - start}


def build_tiny_model(output_dir: str | Path, *, max_steps: int = 600, seconds: float | None = 100.0,
                     seed: int = 0, vocab_size: int = 1024) -> dict:
    """Build, pretrain and save the tiny model into output_dir. Returns metrics."""
    from transformers import set_seed

    set_seed(seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paragraphs, dialogues = bundled_texts()
    texts = paragraphs + [m["content"] for d in dialogues for m in d]
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = make_model(tokenizer, seed=seed)
    ids = token_stream(tokenizer, paragraphs, dialogues, seed)
    metrics = pretrain(model, ids, max_steps=max_steps, seconds=seconds, seed=seed)
    metrics["max_steps"] = max_steps
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["tokens_in_corpus"] = len(ids)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    emit("done", metrics=metrics, model_dir=str(out))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the tiny base model.")
    parser.add_argument("--output", required=True, help="Directory to save the model and tokenizer to.")
    parser.add_argument("--max-steps", type=int, default=600, help="Pretraining steps (default 600).")
    parser.add_argument("--seconds", type=float, default=100.0,
                        help="Stop pretraining after this many seconds (default 100), so a build fits in 2 minutes;"
                             " 0 runs every step.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build_tiny_model(args.output, max_steps=args.max_steps, seconds=args.seconds or None, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
