"""Factories shared by the tests of `show` and of the HTML viewer: a local OpenAI-compatible
server that answers by the prompt, and a two-step pipeline against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.endpoints.helpers import Handler, Request, answering, http_response, write_pipeline

SECRET = "sk-live-0123456789abcdef"


TEAM = "team-token-98765"


LONG = "Dear customer, " + "we are looking into it and " * 30 + "THE-END"


def show_handler(seen: list[dict[str, Any]]) -> Handler:
    """Answers by the last user message: ``LONG`` gives a long text, ``ACT`` a tool call;
    the first request whose message contains ``FLAKY`` gets a 500."""
    counts: dict[str, int] = {}

    def answer(request: Request) -> bytes:
        _, headers, raw = request
        body = json.loads(raw)
        seen.append({"headers": headers, "body": body})
        text = body["messages"][-1]["content"]
        counts[text] = counts.get(text, 0) + 1
        if "FLAKY" in text and counts[text] == 1:
            return http_response(500, {"error": {"message": "boom"}})
        if text.startswith("act"):
            call = {
                "id": "1",
                "type": "function",
                "function": {
                    "name": "create_ticket",
                    "arguments": json.dumps({"priority": "high" if "b-" in text else "low"}),
                },
            }
            msg = {"role": "assistant", "content": None, "tool_calls": [call]}
            return http_response(
                200, {"choices": [{"message": msg}], "usage": {"prompt_tokens": 7, "completion_tokens": 4}}
            )
        reply = LONG if "LONG" in text else text.split("REPLY: ")[-1]
        message = {"role": "assistant", "content": reply}
        return http_response(
            200, {"choices": [{"message": message}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
        )

    return answering(answer)


def show_pipeline(tmp_path: Path, base_url: str) -> Path:
    pipeline = {
        "name": "show-test",
        "endpoints": {
            "llm": {
                "type": "openai",
                "base_url": base_url,
                "model": "m",
                "api_key_env": "SHOW_TEST_KEY",
                "headers": {"x-team": "${SHOW_TEAM_TOKEN}"},
                "timeout_s": 5,
            }
        },
        "steps": [
            {
                "id": "classify",
                "endpoint": "llm",
                "prompt": "{{ vars.q }}\nREPLY: {{ vars.reply }}",
                "checks": [{"type": "contains", "value": "{{ expect.classify }}"}],
                "retry": {"max_attempts": 2, "on": ["error"], "backoff": {"initial_s": 0, "max_s": 0}},
            },
            {
                "id": "act",
                "endpoint": "llm",
                "prompt": "act {{ steps.classify.output[:20] }}",
                "checks": [{"type": "tool-call", "name": "create_ticket", "arguments": {"priority": "high"}}],
            },
        ],
    }
    cases = [
        {"id": "a", "vars": {"q": "ok", "reply": "a-label"}, "expect": {"classify": "a-label"}, "tags": ["x"]},
        {"id": "b", "vars": {"q": "FLAKY", "reply": "b-label"}, "expect": {"classify": "b-label"}, "tags": ["y"]},
        {"id": "c", "vars": {"q": "LONG", "reply": "c"}, "expect": {"classify": "nope"}, "tags": ["x"]},
    ]
    return write_pipeline(tmp_path, pipeline, cases)
