"""Servers that misbehave at the socket level end as timeout / protocol within the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from reliability_cli.config.models import OpenAIEndpoint
from reliability_cli.endpoints import AttemptError, AttemptKey, Request
from reliability_cli.endpoints.http import build

from .helpers import (
    cases,
    http_response,
    one_step,
    raw_server,
    read_request,
    run,
    step,
    write_pipeline,
)

DEADLINE = 1.0
SLACK = 0.6


async def never_answers(reader, writer):
    await read_request(reader)
    await asyncio.sleep(30)


async def drips(reader, writer):
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n")
    for _ in range(30):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(1.0)


async def drips_headers(reader, writer):
    await read_request(reader)
    for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.3)


async def closes(reader, writer):
    await read_request(reader)
    writer.close()


async def closes_mid_body(reader, writer):
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"choi')
    await writer.drain()
    writer.close()


async def garbage(reader, writer):
    await read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    writer.close()


def request(timeout_s: float = DEADLINE) -> Request:
    return Request(AttemptKey("c1", 1, "s", 1), [{"role": "user", "content": "hi"}], {}, {}, timeout_s)


async def call(base_url: str, timeout_s: float = DEADLINE):
    endpoint = build("llm", OpenAIEndpoint(type="openai", base_url=base_url, model="m"), {})
    try:
        return await endpoint.call(request(timeout_s))
    finally:
        await endpoint.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (never_answers, "timeout"),
        (drips, "timeout"),
        (drips_headers, "timeout"),
        (closes, "protocol"),
        (closes_mid_body, "protocol"),
        (garbage, "protocol"),
    ],
)
def test_socket_faults_end_within_the_deadline(monkeypatch, transport, handler, kind):
    monkeypatch.setenv("RELCHECK_HTTP_TRANSPORT", transport)
    with raw_server(handler) as url:
        started = time.perf_counter()
        with pytest.raises(AttemptError) as info:
            asyncio.run(call(url))
        elapsed = time.perf_counter() - started
    assert info.value.kind == kind, info.value.reason
    assert elapsed < DEADLINE + SLACK
    if kind == "timeout":
        assert DEADLINE * 1000 * 0.95 <= info.value.latency_ms <= (DEADLINE + SLACK) * 1000


def test_hung_server_through_a_run_is_timeout_in_results(tmp_path):
    with raw_server(never_answers) as url:
        path = write_pipeline(tmp_path / "p", one_step(url, timeout_s=0.5, attempts=2), cases(4))
        started = time.perf_counter()
        results = run(path, tmp_path / "out", concurrency=4)
        elapsed = time.perf_counter() - started
    assert step(results, "answer")["error_kinds"] == {"timeout": 8}
    assert elapsed < 2 * 0.5 + 2.0  # two attempts per unit, units in parallel
    assert results["exit_code"] == 3


def test_slow_but_steady_answer_within_deadline_passes():
    async def slow_ok(reader, writer):
        await read_request(reader)
        await asyncio.sleep(0.3)
        writer.write(http_response(200, {"choices": [{"message": {"content": "fine"}}]}))
        await writer.drain()

    with raw_server(slow_ok) as url:
        response = asyncio.run(call(url))
    assert response.text == "fine" and 250 <= (response.latency_ms or 0) < 1000
