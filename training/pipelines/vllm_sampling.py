"""vLLM where it can run, transformers' generate() everywhere else: the one choice, and vLLM's requests.

vLLM needs a CUDA GPU, so it is never a requirement of the platform: a GPU worker that has it
installed samples with it, every other worker with transformers. `use_vllm()` is that choice, made
once per process: RLOO/GRPO pass TRL's `use_vllm=True` in colocate mode (vLLM shares the training
GPU), and generate.py samples with vLLM's offline `LLM(...).generate`. Both paths stop where the
assistant's turn ends (generate.turn_stops) and go through the same clean-up, so the output rows
are the same either way. FEEDBACKLOOP_VLLM=0 turns vLLM off on a worker that has it.

Nothing here imports vllm at module level: only the functions that run on the vLLM path do.
"""
from __future__ import annotations

import importlib.util
import os

# Share of the GPU's memory vLLM may take when it runs beside training (TRL's colocate mode).
COLOCATE_GPU_MEMORY = 0.3


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


def use_vllm(*, importable: bool | None = None, cuda: bool | None = None) -> bool:
    """True when vllm is importable, a CUDA GPU is present and the operator has not turned it off."""
    if os.environ.get("FEEDBACKLOOP_VLLM", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    importable = vllm_importable() if importable is None else importable
    if not importable:
        return False
    return cuda_present() if cuda is None else cuda


def trl_vllm_kwargs(enabled: bool) -> dict:
    """The RLOOConfig/GRPOConfig keyword arguments for the rollouts: colocated vLLM, or nothing."""
    if not enabled:
        return {}
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": COLOCATE_GPU_MEMORY}


def sampling_kwargs(*, n: int, temperature: float, top_p: float, max_new_tokens: int, stop_token_ids: list[int],
                    stop: list[str]) -> dict:
    """vllm.SamplingParams arguments equal to generate.sample's generate() call.

    top_k is off (transformers' top_k=0 is vLLM's -1), special tokens are skipped as in decode(),
    and the stop strings are cut from the text as generate._cut does. No per-request seed: the
    engine is seeded once (load), so a second round of sampling draws new responses, as generate() does.
    """
    return {
        "n": n, "temperature": temperature, "top_p": top_p, "top_k": -1, "max_tokens": max_new_tokens,
        "stop_token_ids": list(stop_token_ids), "stop": list(stop), "skip_special_tokens": True,
    }


def load(model_path: str, seed: int):
    """vLLM's offline engine over a model directory, in the dtype the checkpoint was saved in."""
    from vllm import LLM

    return LLM(model=model_path, seed=seed, dtype="auto", gpu_memory_utilization=0.85)


def requests(token_ids: list[list[int]]) -> list[dict]:
    """vLLM prompts as token ids, tokenized by our tokenizer exactly as the transformers path does."""
    return [{"prompt_token_ids": list(ids)} for ids in token_ids]


def sample(llm, token_ids: list[list[int]], *, params: dict) -> list[list[str]]:
    """For each prompt (its token ids), the texts of its n samples (duplicates included)."""
    from vllm import SamplingParams

    outputs = llm.generate(requests(token_ids), SamplingParams(**params), use_tqdm=False)
    return [[completion.text for completion in output.outputs] for output in outputs]
