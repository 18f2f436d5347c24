"""Malformed replies are one ``parse`` error on that attempt, never a crash (issue 10, item 11).

Each body is served by a real HTTP server on 127.0.0.1 to an ``openai`` or ``anthropic``
endpoint, and the run must finish with the attempt classified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..endpoints.helpers import always, attempts, raw_server, run, write_pipeline

DEEP = "[" * 100_000 + "]" * 100_000


def openai_reply(message: Any = None, usage: Any = None, raw: str | None = None) -> bytes:
    if raw is not None:
        return raw.encode()
    body: dict[str, Any] = {"choices": [{"index": 0, "message": message}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def anthropic_reply(content: Any, usage: Any = None) -> bytes:
    body: dict[str, Any] = {"type": "message", "role": "assistant", "content": content}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


HUGE = "9" * 5000
OPENAI_BODIES = {
    "text_part_null": openai_reply({"role": "assistant", "content": [{"type": "text", "text": None}]}),
    "tool_calls_number": openai_reply({"role": "assistant", "content": None, "tool_calls": 5}),
    "content_number": openai_reply({"role": "assistant", "content": 12345}),
    "body_nested_100k": ('{"choices": [{"message": {"content": "x", "extra": ' + DEEP + "}}]}").encode(),
    "arguments_nested_100k": openai_reply(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": DEEP}}],
        }
    ),
    "usage_5000_digits": (
        '{"choices": [{"message": {"content": "a0"}}], "usage": {"prompt_tokens": '
        + HUGE
        + ', "completion_tokens": 1}}'
    ).encode(),
    "usage_negative": openai_reply(
        {"role": "assistant", "content": "a0"}, {"prompt_tokens": -5, "completion_tokens": 1}
    ),
    "usage_absurd": openai_reply(
        {"role": "assistant", "content": "a0"}, {"prompt_tokens": 1, "completion_tokens": 10**30}
    ),
    "tool_call_not_object": openai_reply({"role": "assistant", "content": None, "tool_calls": ["f"]}),
}
ANTHROPIC_BODIES = {
    "text_null": anthropic_reply([{"type": "text", "text": None}]),
    "content_number": anthropic_reply(12345),
    "block_number": anthropic_reply([5]),
    "body_nested_100k": ('{"content": [{"type": "tool_use", "name": "f", "input": ' + DEEP + "}]}").encode(),
    "usage_5000_digits": (
        '{"content": [{"type": "text", "text": "a0"}], "usage": {"input_tokens": ' + HUGE + "}}"
    ).encode(),
    "usage_negative": anthropic_reply([{"type": "text", "text": "a0"}], {"input_tokens": 3, "output_tokens": -1}),
    "usage_absurd": anthropic_reply([{"type": "text", "text": "a0"}], {"input_tokens": 10**12}),
}


def _pipeline(tmp_path: Path, kind: str, url: str) -> Path:
    endpoint: dict[str, Any] = {"type": kind, "base_url": url, "model": "m", "timeout_s": 10}
    return write_pipeline(
        tmp_path,
        {
            "name": "hostile",
            "endpoints": {"llm": endpoint},
            "steps": [
                {
                    "id": "answer",
                    "endpoint": "llm",
                    "prompt": "{{ vars.q }}",
                    "checks": [{"type": "equals", "value": "a0"}],
                    "retry": {"max_attempts": 1, "backoff": {"initial_s": 0, "max_s": 0}},
                }
            ],
        },
        [{"id": "c0", "vars": {"q": "q"}, "expect": {}}],
    )


@pytest.mark.parametrize(
    "kind,name", [("openai", n) for n in OPENAI_BODIES] + [("anthropic", n) for n in ANTHROPIC_BODIES]
)
def test_malformed_reply_is_a_parse_error_of_that_attempt(tmp_path, kind, name):
    body = (OPENAI_BODIES if kind == "openai" else ANTHROPIC_BODIES)[name]
    with raw_server(always(200, body)) as url:
        results = run(_pipeline(tmp_path, kind, url), tmp_path / "run")
    (attempt,) = attempts(tmp_path / "run")
    assert (attempt["outcome"], attempt["error_kind"]) == ("error", "parse"), attempt
    assert attempt["tokens_in"] is None and attempt["tokens_out"] is None
    assert len(attempt["reason"]) < 400  # a 100,000-level body is not quoted whole
    assert results["units"][0]["error_kind"] == "parse"
    assert (tmp_path / "run" / "results.json").is_file()


def test_a_well_formed_reply_still_passes(tmp_path):
    """The control: the same server and pipeline with a sane body pass (the checks above bite)."""
    body = openai_reply(
        {"role": "assistant", "content": [{"type": "text", "text": "a0"}]}, {"prompt_tokens": 3, "completion_tokens": 1}
    )
    with raw_server(always(200, body)) as url:
        run(_pipeline(tmp_path, "openai", url), tmp_path / "run")
    (attempt,) = attempts(tmp_path / "run")
    assert (attempt["outcome"], attempt["tokens_in"], attempt["tokens_out"]) == ("pass", 3, 1)


def test_model_output_parsed_as_json_is_bounded(tmp_path):
    """``parse: json`` on a model's output nested 100,000 levels or with a 5,000-digit number
    is the model's ``fail`` (its output could not be parsed as asked), not a crash."""
    outputs = [DEEP, "[" + HUGE + "]"]
    for i, text in enumerate(outputs):
        body = openai_reply({"role": "assistant", "content": text})
        with raw_server(always(200, body)) as url:
            path = _pipeline(tmp_path / str(i), "openai", url)
            data = path.read_text().replace("checks:", "parse: json\n  checks:", 1)
            path.write_text(data)
            run(path, tmp_path / str(i) / "run")
        (attempt,) = attempts(tmp_path / str(i) / "run")
        assert attempt["outcome"] == "fail" and "not valid JSON" in attempt["reason"], attempt
