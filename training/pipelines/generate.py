"""Sample K distinct responses per prompt from a model dir (the next comparison round).

    python -m training.pipelines.generate --config gen.json
    python -m training.pipelines.generate --model DIR --input prompts.jsonl --output out.jsonl --k 4

Input JSONL rows: {"prompt": [messages]} or {"messages": [messages]} or {"prompt": "text"}, with
optional "id" and "metadata". Output rows are in the platform's import format, so a generated file
imports as comparison tasks: {"messages": [...], "responses": ["...", ...], "id": ..., "metadata": ...}.
Exact duplicates (after stripping whitespace) and empty responses are dropped; the sampler retries a
few rounds to fill K distinct responses, so a prompt can end with fewer than K only if the model
keeps repeating itself. Prints JSON-lines progress (see common.py).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from training.pipelines import common, vllm_sampling
from training.pipelines.common import MAX_BATCH, SEED_MAX, ConfigError, meta


@dataclass(kw_only=True)
class GeneratePipelineConfig:
    """Sample K responses per prompt."""

    model_path: str = field(metadata={"help": "Model directory (or hub id) to sample from."})
    prompts_file: str = field(metadata={"help": "JSONL of {\"prompt\": [messages]} or {\"messages\": [...]}."})
    output_file: str = field(metadata={"help": "JSONL to write: {\"messages\", \"responses\", \"id\"}."})
    k: int = field(default=4, metadata=meta("Distinct responses per prompt.", ge=1, le=64))
    temperature: float = field(default=1.0, metadata=meta("Sampling temperature.", gt=0, le=100))
    top_p: float = field(default=0.95, metadata=meta("Nucleus sampling threshold.", gt=0, le=1))
    max_new_tokens: int = field(default=128, metadata=meta("Max tokens per response.", ge=1, le=8192))
    seed: int = field(default=42, metadata=meta("Random seed.", ge=0, le=SEED_MAX))
    batch_size: int = field(default=16, metadata=meta("Prompts per generate() call.", ge=1, le=MAX_BATCH))
    max_rounds: int = field(default=4, metadata=meta("Sampling rounds to fill K distinct responses.", ge=1, le=100))


def as_messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


VLLM = "vllm"  # the "device" of a model loaded in vLLM's engine


def load_model(model_path: str, seed: int = 42):
    """(model, tokenizer, device) ready for batched sampling: vLLM's engine where it runs (device "vllm")."""
    import torch
    from transformers import AutoModelForCausalLM

    if vllm_sampling.use_vllm():
        return vllm_sampling.load(model_path, seed), common.load_tokenizer(model_path), VLLM
    device = common.pick_device()
    dtype = torch.bfloat16 if common.bf16_supported(device) else torch.float32
    tokenizer = common.load_tokenizer(model_path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    return model, tokenizer, device


_PROBE = ("\u2063a\u2063", "\u2063b\u2063", "\u2063c\u2063", "\u2063d\u2063")  # contents no template writes


def turn_stops(tokenizer, model=None) -> tuple[list[int], list[str]]:
    """What ends the assistant's turn: token ids to stop generating at, and texts to cut a response at.

    A model that learned chats may write the next turn's marker (`<|user|>`, a header) instead of the
    end-of-turn token; decoding with special tokens skipped would then hide the marker and keep the
    next turn's text as part of the response. So the chat template itself says where a turn ends:
    whatever it writes between one message's content and the next one's (end-of-turn token, role
    markers) stops generation, with the tokenizer's and the model's own end tokens.
    """
    chat = [{"role": "user", "content": _PROBE[0]}, {"role": "assistant", "content": _PROBE[1]},
            {"role": "user", "content": _PROBE[2]}, {"role": "assistant", "content": _PROBE[3]}]
    between: list[str] = []
    try:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:  # a template that refuses this shape: fall back to the end tokens alone
        text = ""
    for first, second in zip(_PROBE, _PROBE[1:]):
        start, end = text.find(first), text.find(second)
        if 0 <= start < end:
            between.append(text[start + len(first):end])
    # Special and added tokens: role markers are often added tokens rather than "special" ones.
    specials = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.all_special_tokens}
    specials.update(tokenizer.get_added_vocab())
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    cuts: list[str] = []
    for segment in between:
        ids.update(token_id for token, token_id in specials.items() if token and token in segment)
        plain = segment
        for token in specials:
            plain = plain.replace(token, "") if token else plain
        if plain.strip():  # a template of plain-text markers ("\n### User:")
            cuts.append(plain.strip())
    ids.discard(tokenizer.pad_token_id)
    ids.discard(None)
    return sorted(ids), sorted(set(cuts), key=len, reverse=True)


def _cut(text: str, cuts: list[str]) -> str:
    for marker in cuts:
        where = text.find(marker)
        if where >= 0:
            text = text[:where]
    return text


def sample(model, tokenizer, device, prompts: list[list[dict]], n: int, *, temperature: float, top_p: float,
           max_new_tokens: int) -> list[list[str]]:
    """n raw samples for each prompt (duplicates included), each ending where the assistant's turn ends."""
    import torch

    stop_ids, cuts = turn_stops(tokenizer, model if device != VLLM else None)
    texts = [tokenizer.apply_chat_template(as_messages(p), tokenize=False, add_generation_prompt=True)
             for p in prompts]
    if device == VLLM:
        params = vllm_sampling.sampling_kwargs(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                               stop_token_ids=stop_ids, stop=cuts)
        ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        return [[_cut(text, cuts) for text in row] for row in vllm_sampling.sample(model, ids, params=params)]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    with torch.no_grad():
        out = model.generate(
            **batch, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
            max_new_tokens=max_new_tokens, num_return_sequences=n,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids or tokenizer.eos_token_id,
        )
    decoded = []
    stop = set(stop_ids)
    for row in out[:, batch["input_ids"].shape[1]:].tolist():
        end = next((i for i, token in enumerate(row) if token in stop), len(row))
        decoded.append(_cut(tokenizer.decode(row[:end], skip_special_tokens=True), cuts))
    return [decoded[i * n:(i + 1) * n] for i in range(len(prompts))]


def generate(model_path: str, prompts: list, k: int = 4, temperature: float = 1.0, top_p: float = 0.95,
             max_new_tokens: int = 128, seed: int = 42, batch_size: int = 16, max_rounds: int = 4,
             on_batch=None, loaded=None) -> list[list[str]]:
    """K distinct, non-empty responses for each prompt (a list of messages, or a string).

    `loaded` is an optional (model, tokenizer, device) from load_model(), to reuse a loaded model.
    """
    from transformers import set_seed

    set_seed(seed)
    model, tokenizer, device = loaded or load_model(model_path, seed)
    results: list[list[str]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        found: list[list[str]] = [[] for _ in chunk]
        for _ in range(max_rounds):
            todo = [i for i, f in enumerate(found) if len(f) < k]
            if not todo:
                break
            samples = sample(model, tokenizer, device, [chunk[i] for i in todo], k, temperature=temperature,
                             top_p=top_p, max_new_tokens=max_new_tokens)
            for i, texts in zip(todo, samples):
                for text in texts:
                    text = text.strip()
                    if text and text not in found[i] and len(found[i]) < k:
                        found[i].append(text)
        results.extend(found)
        if on_batch is not None:
            on_batch(len(results), len(prompts))
    return results


def run(cfg: GeneratePipelineConfig) -> dict:
    rows = common.read_jsonl(cfg.prompts_file)
    prompts = []
    for i, row in enumerate(rows, 1):
        prompt = row.get("prompt", row.get("messages"))
        if not prompt:
            raise ValueError(f"{cfg.prompts_file}:{i}: needs \"prompt\" or \"messages\"")
        prompts.append(as_messages(prompt))
    common.emit("start", kind="generate", step=0, total=len(prompts), resumed_from=None,
                device=common.pick_device(), bf16=False,
                backend="vllm" if vllm_sampling.use_vllm() else "transformers")
    responses = generate(
        cfg.model_path, prompts, k=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size, max_rounds=cfg.max_rounds,
        on_batch=lambda done, total: common.emit("progress", step=done, total=total, metrics={}),
    )
    Path(cfg.output_file).parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.output_file, "w") as f:
        for row, prompt, texts in zip(rows, prompts, responses):
            out = {"messages": prompt, "responses": texts}
            for key in ("id", "metadata"):
                if key in row:
                    out[key] = row[key]
            f.write(json.dumps(out) + "\n")
    metrics = {"prompts": len(prompts), "responses": sum(len(r) for r in responses),
               "short_prompts": sum(len(r) < cfg.k for r in responses)}
    common.emit("done", metrics=metrics, output_file=cfg.output_file)
    return metrics


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sample K distinct responses per prompt.")
    parser.add_argument("--config", help="JSON file with the fields of GeneratePipelineConfig")
    parser.add_argument("--model", dest="model_path")
    parser.add_argument("--input", dest="prompts_file")
    parser.add_argument("--output", dest="output_file")
    parser.add_argument("--k", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", dest="top_p", type=float)
    parser.add_argument("--max-new-tokens", dest="max_new_tokens", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    if args.config:
        return common.main(GeneratePipelineConfig, run, ["--config", args.config])
    data = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
    try:
        cfg = common.config_from_dict(GeneratePipelineConfig, data)
    except ConfigError as exc:
        common.emit("error", message=str(exc), field=exc.field)
        return 2
    run(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
