"""Sampled responses end where the assistant's turn ends: the next turn never leaks into a response.

A model that learned chats can write the next turn's marker (`<|user|>`) instead of the end-of-turn
token. Decoding with special tokens skipped used to hide that marker and keep the invented user turn
as part of the response, and from there it reached comparison tasks and exports.
"""

import pytest

from training.pipelines import generate


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from training.pipelines.common import load_tokenizer

    return load_tokenizer(tiny_model)


class _Scripted:
    """A stand-in for the model's generate(): it answers with the token ids it was given."""

    def __init__(self, rows):
        self.rows = rows
        self.generation_config = None
        self.asked = {}

    def generate(self, input_ids, n_rows=None, **kwargs):
        import torch

        self.asked = kwargs
        prompt = input_ids.tolist()[0]
        width = max(len(row) for row in self.rows)
        pad = kwargs["pad_token_id"]
        return torch.tensor([prompt + row + [pad] * (width - len(row)) for row in self.rows])


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_the_templates_turn_markers_stop_generation(tokenizer):
    ids, cuts = generate.turn_stops(tokenizer)
    assert set(tokenizer.convert_ids_to_tokens(ids)) == {"<|end|>", "<|user|>", "<|assistant|>"}
    assert tokenizer.pad_token_id not in ids and cuts == []


def test_a_response_stops_at_a_role_marker_the_model_wrote(tokenizer):
    rows = [
        _ids(tokenizer, "The sea is calm.<|user|>Now tell me about cats.<|end|>"),
        _ids(tokenizer, "Waves come in.<|assistant|>And go out.<|end|>"),
        _ids(tokenizer, "Salt water.<|end|>"),
    ]
    model = _Scripted(rows)
    responses = generate.sample(model, tokenizer, "cpu", [[{"role": "user", "content": "The sea?"}]], 3,
                                temperature=1.0, top_p=1.0, max_new_tokens=32)
    assert [text.strip() for text in responses[0]] == ["The sea is calm.", "Waves come in.", "Salt water."]
    assert set(model.asked["eos_token_id"]) == set(generate.turn_stops(tokenizer)[0])  # generation stops too


def test_plain_text_turn_markers_are_cut_as_text(tokenizer):
    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = (
        "{% for m in messages %}{{ '### ' + m['role'] + ':\\n' + m['content'] + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}"
    )
    ids, cuts = generate.turn_stops(plain)
    assert "### user:" in cuts and "### assistant:" in cuts
    rows = [_ids(plain, "Calm today.\n### user:\nAnd tomorrow?")]
    responses = generate.sample(_Scripted(rows), plain, "cpu", [[{"role": "user", "content": "Sea?"}]], 1,
                                temperature=1.0, top_p=1.0, max_new_tokens=32)
    assert responses[0][0].strip() == "Calm today."
