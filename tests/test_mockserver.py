"""The mock server, driven by the official SDKs, httpx and aiohttp; loopback traffic only."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import anthropic
import httpx
import openai
import pytest

from reliability_cli.mockserver import (
    WRONG_REPLY,
    FaultConfig,
    MockServer,
    parse_status_rates,
    run_in_thread,
)

WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def chat_body(text: object, **extra: object) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **extra}


def classify(client: httpx.Client, url: str, body: dict) -> str:
    """What the client saw, in the server's count names."""
    try:
        response = client.post(url, json=body)
    except httpx.TimeoutException:
        return "hang"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return "drop"
    if response.status_code != 200:
        return f"status_{response.status_code}"
    try:
        data = response.json()
    except ValueError:
        return "malformed"
    content = data["choices"][0]["message"]["content"]
    return "wrong" if content == WRONG_REPLY else "ok"


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


# --- the official SDKs ----------------------------------------------------------------------


def test_openai_sdk_echo_usage_and_reply_directive():
    with (
        run_in_thread() as server,
        openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-test", max_retries=0) as client,
    ):
        echo = client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello mock world"}],
        )
        assert echo.choices[0].message.content == "echo: hello mock world"
        assert echo.choices[0].finish_reason == "stop"
        assert echo.model == "gpt-test" and echo.object == "chat.completion"
        assert echo.usage is not None
        assert (echo.usage.prompt_tokens, echo.usage.completion_tokens) == (5, 4)
        assert echo.usage.total_tokens == 9
        reply = client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "Classify.\nREPLY: billing\n"}]
        )
        assert reply.choices[0].message.content == "billing"
        assert server.counts == Counter({"requests": 2, "ok": 2})


def test_openai_sdk_tool_call_and_models():
    with (
        run_in_thread() as server,
        openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-test", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(
            model="gpt-test",
            tools=[WEATHER_OPENAI],
            messages=[{"role": "user", "content": 'Weather?\nCALL: get_weather {"city": "Oslo"}'}],
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        call = choice.message.tool_calls[0]
        assert call.type == "function" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Oslo"}
        # After the tool result the directive no longer applies: the loop ends with text.
        follow_up = client.chat.completions.create(
            model="gpt-test",
            tools=[WEATHER_OPENAI],
            messages=[
                {"role": "user", "content": 'CALL: get_weather {"city": "Oslo"}'},
                choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
        )
        assert follow_up.choices[0].finish_reason == "stop"
        assert [m.id for m in client.models.list()] == ["relcheck-mock"]


def test_anthropic_sdk_echo_reply_and_tool_use():
    with (
        run_in_thread() as server,
        anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0) as client,
    ):
        echo = client.messages.create(
            model="claude-test",
            max_tokens=64,
            system="Be brief.",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "first part"}, {"type": "text", "text": "second"}],
                }
            ],
        )
        assert echo.type == "message" and echo.role == "assistant"
        assert echo.content[0].type == "text"
        assert echo.content[0].text == "echo: first part\nsecond"
        assert echo.stop_reason == "end_turn" and echo.stop_sequence is None
        assert (echo.usage.input_tokens, echo.usage.output_tokens) == (5, 4)
        reply = client.messages.create(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "REPLY: tech"}]
        )
        assert reply.content[0].text == "tech"
        tool = client.messages.create(
            model="claude-test",
            max_tokens=64,
            tools=[WEATHER_ANTHROPIC],
            messages=[{"role": "user", "content": 'CALL: get_weather {"city": "Lima"}'}],
        )
        assert tool.stop_reason == "tool_use"
        block = tool.content[0]
        assert block.type == "tool_use" and block.name == "get_weather"
        assert block.input == {"city": "Lima"}
        assert [m.id for m in client.models.list()] == ["relcheck-mock"]


def test_sdk_errors_without_retries():
    config = FaultConfig(status_rates={500: 1.0})
    with run_in_thread(config) as server:
        messages = [{"role": "user", "content": "x"}]
        with (
            openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="k", max_retries=0) as oai,
            pytest.raises(openai.InternalServerError),
        ):
            oai.chat.completions.create(model="m", messages=messages)
        with (
            anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0) as ant,
            pytest.raises(anthropic.InternalServerError),
        ):
            ant.messages.create(model="m", max_tokens=8, messages=messages)
        assert server.counts == Counter({"requests": 2, "status_500": 2})
    with (
        run_in_thread(FaultConfig(quota_exhausted=True)) as server,
        openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="k", max_retries=0) as client,
    ):
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert info.value.code == "insufficient_quota"
        assert "retry-after" not in info.value.response.headers


# --- fault injection over httpx ----------------------------------------------------------------


def test_status_500_in_each_api_shape(http):
    with run_in_thread(FaultConfig(status_rates={500: 1.0})) as server:
        response = http.post(f"{server.base_url}/v1/chat/completions", json=chat_body("hi"))
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        response = http.post(f"{server.base_url}/v1/messages", json=chat_body("hi", max_tokens=8))
        assert response.status_code == 500
        assert response.json() == {
            "type": "error",
            "error": {"type": "api_error", "message": "relcheck-mock: injected HTTP 500"},
        }


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_carries_retry_after(http, status):
    with run_in_thread(FaultConfig(status_rates={status: 1.0}, retry_after=1.5)) as server:
        response = http.post(f"{server.base_url}/chat/completions", json=chat_body("hi"))
    assert response.status_code == status
    assert response.headers["retry-after"] == "1.5"
    assert response.headers["retry-after-ms"] == "1500"


def test_malformed_drop_and_hang(http):
    url = "/v1/chat/completions"
    with run_in_thread(FaultConfig(malformed_rate=1.0)) as server:
        response = http.post(server.base_url + url, json=chat_body("hi"))
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
    with (
        run_in_thread(FaultConfig(drop_rate=1.0)) as server,
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
    ):
        http.post(server.base_url + url, json=chat_body("hi"))
    with run_in_thread(FaultConfig(hang_rate=1.0)) as server, httpx.Client(trust_env=False, timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(server.base_url + url, json=chat_body("hi"))
        assert time.monotonic() - started < 5
    assert server.counts == Counter({"requests": 1, "hang": 1})


def test_stop_cuts_hanging_requests_quickly():
    with httpx.Client(trust_env=False, timeout=30) as client:
        with run_in_thread(FaultConfig(hang_rate=1.0)) as server:
            pending = httpx.Request("POST", f"{server.base_url}/v1/messages", json=chat_body("x"))
            started = time.monotonic()
            outcome: list[BaseException] = []

            def wait() -> None:
                try:
                    client.send(pending)
                except httpx.HTTPError as exc:
                    outcome.append(exc)

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.2)
        waiter.join(timeout=10)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)
    assert time.monotonic() - started < 5


def test_quota_exhausted_answers_everything_with_insufficient_quota(http):
    with run_in_thread(FaultConfig(quota_exhausted=True, retry_after=3)) as server:
        response = http.post(f"{server.base_url}/v1/chat/completions", content=b"not even json")
        assert response.status_code == 429
        assert response.json()["error"]["type"] == "insufficient_quota"
        assert response.json()["error"]["code"] == "insufficient_quota"
        assert "retry-after" not in response.headers


def test_counts_match_what_the_client_saw():
    config = FaultConfig(
        fail_rate=0.15,
        status_rates={500: 0.1, 429: 0.1, 503: 0.05},
        malformed_rate=0.1,
        drop_rate=0.1,
        hang_rate=0.03,
        seed=11,
    )
    seen: Counter[str] = Counter()
    with run_in_thread(config) as server, httpx.Client(trust_env=False, timeout=0.3) as client:
        for i in range(200):
            seen[classify(client, f"{server.base_url}/v1/chat/completions", chat_body(f"question {i}"))] += 1
        counts = Counter(server.counts)
    assert counts.pop("requests") == 200
    assert counts == seen
    assert set(seen) == {"ok", "wrong", "status_500", "status_429", "status_503", "malformed", "drop", "hang"}


def _outcomes(config: FaultConfig, texts: list[str]) -> list[str]:
    with run_in_thread(config) as server, httpx.Client(trust_env=False, timeout=5) as client:
        return [classify(client, f"{server.base_url}/v1/chat/completions", chat_body(t)) for t in texts]


def test_same_seed_and_sequence_give_same_outcomes():
    config = FaultConfig(fail_rate=0.2, status_rates={500: 0.2}, malformed_rate=0.1, drop_rate=0.1, seed=3)
    texts = [f"case {i % 9}" for i in range(60)]
    first = _outcomes(config, texts)
    assert _outcomes(config, texts) == first
    assert len(set(first)) > 3
    assert _outcomes(dataclasses.replace(config, seed=4), texts) != first
    # Draws follow each body's own count, so other bodies' order does not matter.
    reordered = list(reversed(texts))
    by_body: dict[str, list[str]] = {}
    for text, outcome in zip(reordered, _outcomes(config, reordered)):
        by_body.setdefault(text, []).append(outcome)
    for text, outcome in zip(texts, first):
        assert by_body[text].pop(0) == outcome


def test_latency_and_jitter(http):
    with run_in_thread(FaultConfig(latency_ms=150, jitter_ms=50)) as server:
        for i in range(3):
            started = time.monotonic()
            assert http.post(f"{server.base_url}/v1/messages", json=chat_body(f"t{i}")).is_success
            assert time.monotonic() - started >= 0.095


def test_bad_requests_get_400_in_the_api_shape(http):
    with run_in_thread() as server:
        chat, messages = f"{server.base_url}/v1/chat/completions", f"{server.base_url}/v1/messages"
        response = http.post(chat, content=b"{not json")
        assert response.status_code == 400
        assert "not valid JSON" in response.json()["error"]["message"]
        response = http.post(messages, content=b"[1, 2]")
        assert response.status_code == 400 and response.json()["type"] == "error"
        response = http.post(chat, json=chat_body("hi", stream=True))
        assert response.status_code == 400 and "streaming" in response.json()["error"]["message"]
        response = http.post(chat, json=chat_body("CALL: f [1]", tools=[WEATHER_OPENAI]))
        assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]
        assert http.get(f"{server.base_url}/health").json() == {"status": "ok"}
        parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]
        response = http.post(chat, json=chat_body(parts))
        assert response.json()["choices"][0]["message"]["content"] == "echo: a"
        assert server.counts == Counter({"requests": 5, "bad_request": 4, "ok": 1})


def test_only_loopback_addresses():
    for host in ("0.0.0.0", "192.0.2.1", "", "example.invalid"):
        with pytest.raises(ValueError, match="loopback"):
            asyncio.run(MockServer().start(host))
        with pytest.raises(ValueError, match="loopback"), run_in_thread(host=host):
            pass
    with run_in_thread(host="127.0.0.2") as server:
        assert server.base_url == f"http://127.0.0.2:{server.port}"
    with run_in_thread(host="localhost") as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"


def test_ipv6_loopback(http):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with run_in_thread(host="::1") as server:
        assert server.base_url == f"http://[::1]:{server.port}"
        assert http.get(f"{server.base_url}/health").is_success


def test_parse_status_rates_and_config_validation():
    assert parse_status_rates("500=0.02, 429=0.01") == {500: 0.02, 429: 0.01}
    assert parse_status_rates("") == {}
    for bad, message in [
        ("500", "STATUS=RATE"),
        ("abc=0.1", "not an HTTP status"),
        ("500=x", "not a number"),
        ("200=0.1", "400 to 599"),
        ("500=1.5", "between 0 and 1"),
        ("500=0.1,500=0.2", "twice"),
        ("500=0.6,429=0.6", "more than 1"),
        ("500=nan", "between 0 and 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_status_rates(bad)
    with pytest.raises(ValueError, match="more than 1"):
        FaultConfig(fail_rate=0.6, drop_rate=0.5)
    with pytest.raises(ValueError, match="latency_ms"):
        FaultConfig(latency_ms=-1)


# --- serve(): the blocking entry point the CLI calls ------------------------------------------

SERVE = """
import sys
from reliability_cli.mockserver import FaultConfig, serve
counts = serve(FaultConfig(fail_rate=1.0), "127.0.0.1", 0,
               on_ready=lambda url: print(url, flush=True))
print(dict(sorted(counts.items())), flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_signal_and_returns_counts(sig):
    process = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False, timeout=10) as client:
            data = client.post(f"{url}/v1/chat/completions", json=chat_body("x")).json()
        assert data["choices"][0]["message"]["content"] == WRONG_REPLY
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == 0, err
    assert out.strip() == "{'requests': 1, 'wrong': 1}"


# --- throughput smoke ----------------------------------------------------------------------


def test_throughput_smoke():
    import aiohttp

    total, concurrency = 2000, 64
    body = chat_body("how many requests per second")

    async def hammer(url: str) -> tuple[int, float]:
        tickets = iter(range(total))
        ok = 0
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                nonlocal ok
                for _ in tickets:
                    async with session.post(url, json=body) as response:
                        data = await response.json()
                        ok += response.status == 200 and bool(data["choices"])

            started = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 60)
            return ok, total / (time.perf_counter() - started)

    with run_in_thread() as server:
        ok, rps = asyncio.run(hammer(f"{server.base_url}/v1/chat/completions"))
        assert server.counts == Counter({"requests": total, "ok": total})
    assert ok == total
    print(f"mock server: {rps:,.0f} requests/s ({total} requests, concurrency {concurrency})")
