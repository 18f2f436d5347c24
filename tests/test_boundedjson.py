"""reliability_cli.boundedjson: the depth budget at its boundary, whichever path decides it."""

import json

import pytest

from reliability_cli.boundedjson import MAX_DEPTH, BadJson, depth_exceeds, loads


def nested(depth: int) -> str:
    return "[" * (depth - 1) + '{"k": 1}' + "]" * (depth - 1)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_the_budget_is_exact(as_bytes):
    for depth in (MAX_DEPTH - 1, MAX_DEPTH):
        text = nested(depth)
        assert loads(text.encode() if as_bytes else text) == json.loads(text)
    text = nested(MAX_DEPTH + 1)
    with pytest.raises(BadJson, match="nested deeper than 100 levels"):
        loads(text.encode() if as_bytes else text)


def test_brackets_inside_strings_do_not_hide_or_fake_depth():
    # many brackets in a string of a shallow document: walked, accepted
    shallow = json.dumps({"text": "[{" * 500})
    assert loads(shallow) == {"text": "[{" * 500}
    # a deep document whose strings hold no brackets: still refused
    deep = nested(MAX_DEPTH + 1)
    assert depth_exceeds(json.loads(deep))
    with pytest.raises(BadJson):
        loads(deep)


def test_a_custom_budget():
    assert loads(nested(3), max_depth=3) == json.loads(nested(3))
    with pytest.raises(BadJson, match="deeper than 2 levels"):
        loads(nested(3), max_depth=2)
