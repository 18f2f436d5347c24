"""What each endpoint type sends and how it reads the reply; the transport's error map."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import aiohttp
import httpx
import pytest

from reliability_cli.config.models import AnthropicEndpoint, HttpEndpoint, OpenAIEndpoint
from reliability_cli.endpoints import AttemptError, AttemptKey, Request
from reliability_cli.endpoints.http import build
from reliability_cli.endpoints.transport import classify
from reliability_cli.mockserver import run_in_thread
from tests.helpers import journal_text

from .helpers import (
    always,
    cases,
    completion,
    http_response,
    raw_server,
    read_request,
    run,
    step,
    write_pipeline,
)


def capturing_server(reply: bytes):
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader, writer):
        seen.append(await read_request(reader))
        writer.write(reply)
        await writer.drain()

    return handler, seen


def request(messages, params=None, context=None, timeout_s=5.0) -> Request:
    return Request(AttemptKey("c1", 1, "s", 1), messages, params or {}, context or {}, timeout_s)


async def call(config, req, environ=None):
    endpoint = build("ep", config, {"environ": environ or {}})
    try:
        return await endpoint.call(req)
    finally:
        await endpoint.aclose()


def test_openai_azure_style_headers_query_and_bearer_key():
    handler, seen = capturing_server(http_response(200, completion("hi")))
    with raw_server(handler) as url:
        config = OpenAIEndpoint(
            type="openai",
            base_url=f"{url}/openai/deployments/gpt",
            model="gpt-4o",
            headers={"api-key": "azure-secret"},
            query={"api-version": "2024-06-01"},
            api_key_env="MY_KEY",
            params={"temperature": 0},
        )
        response = asyncio.run(
            call(config, request([{"role": "user", "content": "q"}], {"seed": 1}), environ={"MY_KEY": "sk-abc"})
        )
    line, headers, body = seen[0]
    assert line == "POST /openai/deployments/gpt/chat/completions?api-version=2024-06-01 HTTP/1.1"
    assert headers["api-key"] == "azure-secret" and headers["authorization"] == "Bearer sk-abc"
    assert json.loads(body) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "q"}],
        "temperature": 0,
        "seed": 1,
    }
    assert response.text == "hi" and (response.tokens_in, response.tokens_out) == (3, 2)


def test_anthropic_system_top_level_max_tokens_and_blocks():
    reply = {
        "content": [
            {"type": "text", "text": "Hello "},
            {"type": "tool_use", "name": "f", "input": {"a": 1}},
            {"type": "text", "text": "there"},
        ],
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }
    handler, seen = capturing_server(http_response(200, reply))
    with raw_server(handler) as url:
        config = AnthropicEndpoint(type="anthropic", base_url=url, model="claude", api_key_env="AK")
        response = asyncio.run(
            call(
                config,
                request([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]),
                environ={"AK": "ak-1"},
            )
        )
    line, headers, body = seen[0]
    assert line.startswith("POST /v1/messages ")
    assert headers["x-api-key"] == "ak-1" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert json.loads(body) == {
        "model": "claude",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert response.text == "Hello there"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("f", {"a": 1})]
    assert (response.tokens_in, response.tokens_out) == (7, 3)


def test_http_endpoint_templates_everything_and_follows_output_path():
    reply = {"data": {"items": [{"name": "first"}, {"name": "second", "plan": {"tier": "pro"}}]}}
    handler, seen = capturing_server(http_response(200, reply))
    with raw_server(handler) as url:
        config = HttpEndpoint.model_validate(
            {
                "type": "http",
                "method": "PUT",
                "url": url + "/accounts/{{ vars.id }}",
                "headers": {"x-case": "{{ case.id }}"},
                "json": {"id": "{{ vars.id }}", "n": "{{ vars.n }}", "tags": ["{{ vars.id }}", 3]},
                "output_path": "data.items[1].plan",
            }
        )
        context = {"vars": {"id": "A7", "n": 4}, "case": {"id": "c1", "tags": []}}
        response = asyncio.run(call(config, request([], context=context)))
    line, headers, body = seen[0]
    assert line == "PUT /accounts/A7 HTTP/1.1" and headers["x-case"] == "c1"
    assert json.loads(body) == {"id": "A7", "n": 4, "tags": ["A7", 3]}  # native values kept
    assert response.output == {"tier": "pro"} and json.loads(response.text) == {"tier": "pro"}


def test_http_endpoint_body_text_and_missing_path():
    handler, _ = capturing_server(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain")
    with raw_server(handler) as url:
        config = HttpEndpoint.model_validate({"type": "http", "method": "GET", "url": url})
        assert asyncio.run(call(config, request([]))).text == "plain"
    handler, _ = capturing_server(http_response(200, {"a": 1}))
    with raw_server(handler) as url:
        config = HttpEndpoint.model_validate({"type": "http", "url": url, "output_path": "a.b"})
        with pytest.raises(AttemptError) as info:
            asyncio.run(call(config, request([])))
    assert info.value.kind == "parse" and "output_path a.b" in info.value.reason


def test_error_statuses_map_to_http_kinds_with_a_short_reason():
    handler, _ = capturing_server(http_response(404, {"error": {"message": "The model does not exist."}}))
    with raw_server(handler) as url, pytest.raises(AttemptError) as info:
        asyncio.run(call(OpenAIEndpoint(type="openai", base_url=url, model="m"), request([])))
    assert info.value.kind == "http_404" and info.value.status == 404
    assert info.value.reason == "endpoint ep: HTTP 404: The model does not exist."


def test_classify_maps_every_transport_exception():
    url = "http://127.0.0.1:9/v1/chat?key=SECRET"
    cases_ = [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connect"),
        (httpx.ConnectTimeout("x"), "connect"),
        (httpx.ReadTimeout("x"), "timeout"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "protocol"),
        (httpx.ReadError("x"), "protocol"),
        (httpx.WriteError("x"), "protocol"),
        (httpx.DecodingError("x"), "parse"),
        (httpx.UnsupportedProtocol("x"), "connect"),
        (aiohttp.ServerDisconnectedError(), "protocol"),
        (aiohttp.ClientPayloadError("x"), "protocol"),
        (aiohttp.ServerTimeoutError("x"), "timeout"),
        (aiohttp.ConnectionTimeoutError("x"), "connect"),
        (aiohttp.ClientConnectorError(None, ConnectionRefusedError()), "connect"),
        (ConnectionResetError(), "protocol"),
        (ConnectionRefusedError(), "connect"),
        (RuntimeError("odd"), "protocol"),
    ]
    for exc, kind in cases_:
        got, reason = classify(exc, url)
        assert got == kind, (exc, got)
        assert "SECRET" not in reason and "/v1/chat" not in reason
    # An adapter that wraps aiohttp errors in httpx ones (as httpx-aiohttp does): the cause decides.
    try:
        try:
            raise aiohttp.ServerDisconnectedError()
        except aiohttp.ClientError as inner:
            raise httpx.ConnectTimeout("wrapped") from inner
    except httpx.ConnectTimeout as wrapped:
        assert classify(wrapped, url)[0] == "protocol"


def test_llm_rubric_judge_is_an_openai_endpoint_on_the_mock_server(tmp_path):
    with run_in_thread() as server:
        pipeline = {
            "name": "judged",
            "endpoints": {
                "llm": {"type": "openai", "base_url": f"{server.base_url}/v1", "model": "m"},
                "judge": {"type": "openai", "base_url": f"{server.base_url}/v1", "model": "j"},
            },
            "steps": [
                {
                    "id": "draft",
                    "endpoint": "llm",
                    "prompt": "REPLY: Dear {{ vars.q }}",
                    "checks": [
                        {
                            "type": "llm-rubric",
                            "endpoint": "judge",
                            "rubric": "Greets the customer.\nREPLY: {{ expect.answer }}",
                        }
                    ],
                }
            ],
        }
        verdicts = ['{"reason": "greets", "pass": true, "score": 1}', '{"reason": "rude", "pass": false}']
        rows = [{"id": f"c{i}", "vars": {"q": f"n{i}"}, "expect": {"answer": verdicts[i % 2]}} for i in range(6)]
        path = write_pipeline(tmp_path / "p", pipeline, rows)
        results = run(path, tmp_path / "out")
        requests = server.counts["requests"]
    s = step(results, "draft")
    assert (s["passed"], s["failed"], s["attempts"]) == (3, 3, 6)
    assert requests == 12  # six drafts and six judge calls; judge calls are not counted as steps
    assert "judge: rude" in s["failures"][0]["reason"]
    journal = [json.loads(x) for x in journal_text(tmp_path / "out" / "attempts.jsonl").splitlines()]
    assert sum(1 for x in journal if x.get("phase") == "judge") == 6


def test_judge_infrastructure_error_is_an_error_not_a_fail(tmp_path):
    overloaded = always(500, {"error": {"message": "judge overloaded"}})
    with run_in_thread() as server, raw_server(overloaded) as judge_url:
        pipeline = {
            "name": "judged",
            "endpoints": {
                "llm": {"type": "openai", "base_url": f"{server.base_url}/v1", "model": "m"},
                "judge": {"type": "openai", "base_url": f"{judge_url}/v1", "model": "j"},
            },
            "steps": [
                {
                    "id": "draft",
                    "endpoint": "llm",
                    "prompt": "hello",
                    "checks": [{"type": "llm-rubric", "endpoint": "judge", "rubric": "ok"}],
                }
            ],
        }
        path = write_pipeline(tmp_path / "p", pipeline, cases(2))
        results = run(path, tmp_path / "out")
    draft = step(results, "draft")
    assert draft["error_kinds"] == {"http_500": 2} and draft["failed"] == 0
    assert "judge overloaded" in draft["failures"][0]["reason"]


def test_mock_server_command_serves_and_reports_counts():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reliability_cli",
            "mock-server",
            "--port",
            "0",
            "--status-rate",
            "500=0.5",
            "--seed",
            "3",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_PROXY": "*"},
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        with httpx.Client(trust_env=False, timeout=5) as client:
            statuses = [
                client.post(
                    f"{match.group(1)}/v1/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]},
                ).status_code
                for i in range(20)
            ]
        assert set(statuses) == {200, 500}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"status_500={statuses.count(500)}" in err and "requests=20" in err


def test_mock_server_command_refuses_bad_flags(cli):
    code, _, err = cli("mock-server", "--status-rate", "500=2")
    assert code == 2 and "500" in err
    code, _, err = cli("mock-server", "--host", "0.0.0.0", "--port", "0")
    assert code == 2 and "loopback" in err


def test_tool_endpoint_in_a_run_reads_json_output(tmp_path):
    with run_in_thread() as server:
        pipeline = {
            "name": "tool",
            "endpoints": {
                "tool": {
                    "type": "http",
                    "url": f"{server.base_url}/v1/chat/completions",
                    "json": {
                        "model": "db",
                        "messages": [{"role": "user", "content": 'REPLY: {"plan": "{{ expect.answer }}"}'}],
                    },
                    "output_path": "choices[0].message.content",
                }
            },
            "steps": [
                {
                    "id": "lookup",
                    "endpoint": "tool",
                    "parse": "json",
                    "checks": [{"type": "json-path", "path": "$.plan", "value": "{{ expect.answer }}"}],
                }
            ],
        }
        path = write_pipeline(tmp_path / "p", pipeline, cases(3))
        results = run(path, tmp_path / "out")
    assert step(results, "lookup")["passed"] == 3, step(results, "lookup")["failures"]
