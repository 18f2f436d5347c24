"""similar (lexical similarity) and latency."""

from __future__ import annotations

from reliability_cli.checks.similarity import similarity

from .helpers import passes, reason


def test_similarity_score():
    assert similarity("Hello world", "hello   WORLD") == 1.0
    assert similarity("", "x") == 0.0
    assert similarity("the cat sat on the mat", "on the mat the cat sat") > 0.9  # word order
    assert similarity("abc", "xyz") < 0.2
    assert 0 <= similarity("a b c d", "a b x y") <= 1


def test_similar_default_threshold():
    spec = {"type": "similar", "value": "Your refund has been processed."}
    assert passes(spec, "Your refund has been processed!")
    msg = reason(spec, "We cannot help with that.")
    assert msg.startswith("similarity 0.") and "< 0.8" in msg


def test_similar_threshold_and_list():
    assert passes({"type": "similar", "value": "abcdef", "threshold": 0.5}, "abcxyz")
    assert not passes({"type": "similar", "value": "abcdef", "threshold": 0.9}, "abcxyz")
    spec = {"type": "similar", "value": ["totally different", "refund processed"], "threshold": 0.7}
    assert passes(spec, "Refund processed.")


def test_not_similar_needs_every_value_dissimilar():
    # promptfoo similar.ts: not-similar passes only when dissimilar to every value
    spec = {"type": "not-similar", "value": ["refund processed", "zzz"], "threshold": 0.7}
    assert not passes(spec, "refund processed")
    assert passes(spec, "the weather is nice")


def test_similar_bad_threshold_and_empty_output():
    assert "threshold between 0 and 1" in reason({"type": "similar", "value": "x", "threshold": 5}, "x")
    assert not passes({"type": "similar", "value": "hello"}, "")


def test_latency():
    assert passes({"type": "latency", "max_ms": 500}, "x", latency_ms=500.0)
    assert reason({"type": "latency", "max_ms": 500}, "x", latency_ms=812.4) == ("latency 812.4 ms > max 500 ms")
    assert passes({"type": "not-latency", "max_ms": 10}, "x", latency_ms=20.0)
    assert "max_ms" in reason({"type": "latency", "max_ms": "fast"}, "x")
