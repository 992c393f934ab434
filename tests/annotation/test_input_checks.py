"""The walker that finds unstorable text and deep nesting, and its fast pre-check on JSON text."""

import json

import pytest

from annotation.input_checks import MAX_JSON_DEPTH, field_path, json_problem, json_text_is_plain, printable


def nested(depth: int, leaf="x"):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"config": {"lr_scheduler_type": "\x00"}}, "config.lr_scheduler_type", "contains a NUL character"),
        ({"messages": [{"role": "user", "content": "a\ud800"}]}, "messages[0].content", "lone surrogate"),
        ({"ok": 1, "k\x00ey": 2}, "k\\u0000ey", "The key k\\u0000ey contains a NUL"),
        ([[1, 2], [3, "\udfff"]], "[1][1]", "lone surrogate"),
        ("\x00", "body", "body contains a NUL"),
        (nested(MAX_JSON_DEPTH + 1), "a" + ".a" * (MAX_JSON_DEPTH - 1), "nested more than 64 levels deep"),
    ],
)
def test_the_first_problem_is_named_by_its_path(data, field, words):
    problem = json_problem(data)
    assert problem is not None and problem.field == field
    assert words in problem.message


def test_ordinary_json_has_no_problem():
    ordinary = {"text": "Café 🙂 \ufffd", "list": [1, 2.5, None, True], "deep": nested(MAX_JSON_DEPTH - 1)}
    assert json_problem(ordinary) is None
    assert json_problem(nested(MAX_JSON_DEPTH - 1, leaf=[])) is None  # exactly 64 containers


def test_the_first_problem_in_document_order_wins():
    assert json_problem({"b": "\x00", "a": {"c": "\ud800"}}).field == "b"
    assert json_problem(["fine", {"x\x00": "\ud800"}]).field == "[1].x\\u0000"


def test_the_walk_survives_a_document_deeper_than_the_stack():
    deep: list = []
    inner = deep
    for _ in range(100_000):
        inner.append([])
        inner = inner[0]
    assert "nested more than" in json_problem(deep).message


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\u0000"}', '{"a": "\\uD800"}', '{"a": "\\udfff"}', '{"\\u0000": 1}', '["\\ud83d"]',
        '{"a": "\\\\\\u0000"}', json.dumps(nested(MAX_JSON_DEPTH + 1)), json.dumps(nested(MAX_JSON_DEPTH, leaf=[])),
    ],
)
def test_the_text_pre_check_never_passes_what_the_walk_refuses(text):
    assert json_problem(json.loads(text)) is not None
    assert not json_text_is_plain(text)


@pytest.mark.parametrize(
    "text", ['{"a": "caf\\u00e9"}', '{"a": "\\\\u0000 is how JSON writes NUL"}', '["\\ud83d\\ude00"]']
)
def test_the_pre_check_may_send_harmless_text_to_the_walk(text):
    """A false "maybe" costs a walk; the walk then finds nothing."""
    assert json_problem(json.loads(text)) is None


def test_printable_names():
    assert printable("a\x00b\ud800") == "a\\u0000b\\ud800"
    assert field_path(("messages", 0, "content")) == "messages[0].content"
    assert field_path((0, "a")) == "[0].a"
