"""vLLM where a GPU and vllm are present, transformers elsewhere: the choice, and vLLM's requests.

vllm cannot run here (it needs CUDA), so the vLLM path is driven through a fake `vllm` module in
sys.modules: the GPU edge. It records the SamplingParams and prompts the pipeline builds and answers
with scripted texts, so the test checks what would reach vLLM and what the pipeline makes of it.
"""
import dataclasses
import json
import sys
import types

import pytest

from training.pipelines import generate, vllm_sampling
from training.pipelines.common import load_tokenizer


@pytest.mark.parametrize("importable, cuda, chosen", [
    (True, True, True), (True, False, False), (False, True, False), (False, False, False)])
def test_vllm_only_where_it_is_importable_and_a_gpu_is_present(monkeypatch, importable, cuda, chosen):
    monkeypatch.delenv("FEEDBACKLOOP_VLLM", raising=False)
    assert vllm_sampling.use_vllm(importable=importable, cuda=cuda) is chosen


def test_the_operator_can_turn_vllm_off(monkeypatch):
    monkeypatch.setenv("FEEDBACKLOOP_VLLM", "0")
    assert vllm_sampling.use_vllm(importable=True, cuda=True) is False


def test_here_there_is_no_vllm_so_transformers_samples(monkeypatch):
    monkeypatch.delenv("FEEDBACKLOOP_VLLM", raising=False)
    assert vllm_sampling.use_vllm() is False  # no CUDA on the CI machine, no vllm installed


@pytest.mark.parametrize("config_name", ["GRPOConfig", "RLOOConfig"])
def test_the_rollout_arguments_are_trl_fields_for_colocated_vllm(config_name):
    import trl

    names = {f.name for f in dataclasses.fields(getattr(trl, config_name))}
    kwargs = vllm_sampling.trl_vllm_kwargs(True)
    assert kwargs["use_vllm"] is True and kwargs["vllm_mode"] == "colocate"
    assert set(kwargs) <= names
    assert vllm_sampling.trl_vllm_kwargs(False) == {}


class FakeVllm:
    """The `vllm` module at the GPU edge: LLM records its prompts, SamplingParams its kwargs."""

    def __init__(self, answers):
        self.answers = answers  # texts vLLM would return for each prompt, in order
        self.params: list[dict] = []
        self.prompts: list = []
        fake = self

        class SamplingParams:
            def __init__(self, **kwargs):
                fake.params.append(kwargs)
                self.n = kwargs["n"]

        class LLM:
            def __init__(self, **kwargs):
                fake.engine = kwargs

            def generate(self, prompts, params, use_tqdm=True):
                fake.prompts.extend(prompts)
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text) for text in fake.answers[:params.n]])
                        for _ in prompts]

        self.module = types.ModuleType("vllm")
        self.module.SamplingParams, self.module.LLM = SamplingParams, LLM


@pytest.fixture
def fake_vllm(monkeypatch):
    fake = FakeVllm(["Cats are calm.", "  Cats are calm. ", "Dogs bark.", "", "Birds sing."])
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setattr(vllm_sampling, "use_vllm", lambda **kwargs: True)
    return fake


def test_the_vllm_request_matches_the_transformers_call(fake_vllm, tiny_model):
    tokenizer = load_tokenizer(tiny_model)
    prompts = [[{"role": "user", "content": "Say something about cats."}]]
    loaded = generate.load_model(tiny_model, seed=7)
    assert loaded[2] == generate.VLLM and fake_vllm.engine["seed"] == 7 and fake_vllm.engine["model"] == tiny_model
    out = generate.generate(tiny_model, prompts, k=3, temperature=0.7, top_p=0.9, max_new_tokens=20, max_rounds=1,
                            loaded=loaded)
    stop_ids, cuts = generate.turn_stops(tokenizer)
    assert fake_vllm.params == [{
        "n": 3, "temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_tokens": 20, "stop_token_ids": stop_ids,
        "stop": cuts, "skip_special_tokens": True}]
    text = tokenizer.apply_chat_template(prompts[0], tokenize=False, add_generation_prompt=True)
    assert fake_vllm.prompts == [{"prompt_token_ids": tokenizer(text, add_special_tokens=False)["input_ids"]}]
    # The same clean-up as transformers': stripped, duplicates and empties dropped.
    assert out == [["Cats are calm.", "Dogs bark."]]


def test_a_generation_job_writes_the_same_rows_either_way(fake_vllm, tiny_model, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": [{"role": "user", "content": "Hi"}], "id": "p1"}) + "\n")
    rows = {}
    for backend in ("vllm", "transformers"):
        monkeypatch.setattr(vllm_sampling, "use_vllm", lambda backend=backend, **kwargs: backend == "vllm")
        cfg = generate.GeneratePipelineConfig(model_path=tiny_model, prompts_file=str(prompts),
                                              output_file=str(tmp_path / f"{backend}.jsonl"), k=3, max_new_tokens=8)
        generate.run(cfg)
        rows[backend] = json.loads((tmp_path / f"{backend}.jsonl").read_text())
        start = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"start"' in line][-1]
        assert start["backend"] == backend
    assert rows["vllm"]["responses"] == ["Cats are calm.", "Dogs bark."]
    assert rows["vllm"].keys() == rows["transformers"].keys() == {"messages", "responses", "id"}
    assert rows["vllm"]["messages"] == rows["transformers"]["messages"]
