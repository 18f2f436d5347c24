"""A rate-limited OpenAI- and Anthropic-compatible server for ``bench/ratelimit.py`` (loopback only).

``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic) answer ``ok``
after a log-normal latency (median ``latency_ms``, ``sigma``), like a provider at its limit:

- **Requests per minute**: a token bucket refilled at ``rpm / 60`` per second holding
  ``burst_s`` seconds' worth (default 1 s). A request finding it empty gets 429.
- **Tokens per minute**: a second bucket (``tpm``). A request is charged on arrival its
  prompt tokens (characters of its messages / 4) plus its ``max_tokens`` (default 256), as
  OpenAI does; when it is answered, the ``max_tokens`` it did not use is given back. Every
  answer uses ``completion_tokens`` tokens (at most ``max_tokens``).
- **Concurrency cap** (``concurrency_cap``): a request arriving while that many are being
  served gets 429 (``retry-after: 1``, as gateways answer), with no rate-limit headers.
- **Headers** (``style``): ``openai`` — ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``
  with Go durations and, on 429, ``retry-after-ms``; ``anthropic`` —
  ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` with RFC 3339 times and, on
  429, ``retry-after`` in whole seconds; ``none`` — 429 with ``retry-after`` only.
  Limits are reported per minute, remaining counts as of the request's arrival, ``reset`` as
  the time until that bucket is full again.

``GET /stats`` returns the counts (``requests``, ``ok``, ``status_429_rate``,
``status_429_cap``, ``max_in_flight``), ``first_at``/``last_at`` (the first request's
arrival and the last answer, ``time.monotonic`` of the server process): the serving time of
whatever client ran — and ``last_ok_arrival_at`` and ``latencies`` (the latency drawn for each
answered request, in order of arrival), from which the benchmark computes what a perfect
client would have needed on the same draws. ``POST /reset`` zeroes them and refills the buckets.

Bounded: it binds 127.0.0.1 only, holds at most ``MAX_IN_FLIGHT`` requests (more get 503)
and answers at most ``max_requests`` in its life (then 503).
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

MAX_IN_FLIGHT = 4096


@dataclass(frozen=True)
class LimitConfig:
    rpm: float | None = None
    tpm: float | None = None
    burst_s: float = 1.0
    concurrency_cap: int | None = None
    style: str = "openai"  # openai | anthropic | none
    latency_ms: float = 300.0
    sigma: float = 0.3
    completion_tokens: int = 50
    seed: int = 0
    max_requests: int = 200_000


def burst_capacity(per_s: float, burst_s: float) -> float:
    """What a bucket refilling at ``per_s`` holds: ``burst_s`` seconds' worth, at least one."""
    return max(1.0, per_s * burst_s)


class _Bucket:
    def __init__(self, per_min: float, burst_s: float) -> None:
        self.limit = per_min
        self.rate = per_min / 60.0
        self.capacity = burst_capacity(self.rate, burst_s)
        self.level = self.capacity
        self.at = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now

    def reset_s(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)

    def wait_s(self, cost: float) -> float:
        return max(0.0, (min(cost, self.capacity) - self.level) / self.rate)


def _go_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3f}s" if minutes else f"{rest:.3f}s"


def _rfc3339(seconds: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=math.ceil(seconds))
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


class RateLimitedServer:
    def __init__(self, config: LimitConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self._reset()

    def _reset(self) -> None:
        c = self.config
        self.requests_bucket = _Bucket(c.rpm, c.burst_s) if c.rpm else None
        self.tokens_bucket = _Bucket(c.tpm, c.burst_s) if c.tpm else None
        self.in_flight = 0
        self.counts = {
            "requests": 0,
            "ok": 0,
            "status_429_rate": 0,
            "status_429_cap": 0,
            "status_503": 0,
            "max_in_flight": 0,
            "tokens": 0,
        }
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_ok_arrival_at: float | None = None
        self.latencies: list[float] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/reset", self._reset_route)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                **self.counts,
                "first_at": self.first_at,
                "last_at": self.last_at,
                "last_ok_arrival_at": self.last_ok_arrival_at,
                "latencies": self.latencies,
                "config": asdict(self.config),
            }
        )

    async def _reset_route(self, request: web.Request) -> web.Response:
        self._reset()
        return web.json_response({"reset": True})

    def _headers(self, now: float) -> dict[str, str]:
        style = self.config.style
        out: dict[str, str] = {}
        for name, bucket in (("requests", self.requests_bucket), ("tokens", self.tokens_bucket)):
            if bucket is None or style == "none":
                continue
            remaining = str(max(0, math.floor(bucket.level)))
            if style == "openai":
                out[f"x-ratelimit-limit-{name}"] = str(int(bucket.limit))
                out[f"x-ratelimit-remaining-{name}"] = remaining
                out[f"x-ratelimit-reset-{name}"] = _go_duration(bucket.reset_s())
            else:
                out[f"anthropic-ratelimit-{name}-limit"] = str(int(bucket.limit))
                out[f"anthropic-ratelimit-{name}-remaining"] = remaining
                out[f"anthropic-ratelimit-{name}-reset"] = _rfc3339(bucket.reset_s())
        return out

    def _retry(self, seconds: float) -> dict[str, str]:
        if self.config.style == "openai":
            return {"retry-after-ms": str(max(1, math.ceil(seconds * 1000))), "retry-after": str(math.ceil(seconds))}
        return {"retry-after": str(max(1, math.ceil(seconds)))}

    async def _openai(self, request: web.Request) -> web.Response:
        return await self._serve(request, "openai")

    async def _anthropic(self, request: web.Request) -> web.Response:
        return await self._serve(request, "anthropic")

    async def _serve(self, request: web.Request, api: str) -> web.Response:
        c = self.config
        now = time.monotonic()
        body = await request.json()
        if self.first_at is None:
            self.first_at = now
        self.counts["requests"] += 1
        if self.in_flight >= MAX_IN_FLIGHT or self.counts["requests"] > c.max_requests:
            self.counts["status_503"] += 1
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        messages = list(body.get("messages") or [])
        chars = sum(len(m.get("content", "")) for m in messages if isinstance(m.get("content"), str))
        if isinstance(body.get("system"), str):
            chars += len(body["system"])
        prompt = math.ceil(chars / 4)
        max_tokens = int(body.get("max_tokens") or 256)
        cost = prompt + max_tokens
        if c.concurrency_cap is not None and self.in_flight >= c.concurrency_cap:
            self.counts["status_429_cap"] += 1
            self.last_at = time.monotonic()
            return web.json_response(
                {"error": {"message": "too many concurrent requests", "type": "rate_limit_error"}},
                status=429,
                headers={"retry-after": "1"},
            )
        for bucket in (self.requests_bucket, self.tokens_bucket):
            if bucket is not None:
                bucket.refill(now)
        waits = [b.wait_s(n) for b, n in ((self.requests_bucket, 1.0), (self.tokens_bucket, cost)) if b is not None]
        if any(w > 0 for w in waits):
            self.counts["status_429_rate"] += 1
            self.last_at = time.monotonic()
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                status=429,
                headers={**self._headers(now), **self._retry(max(waits))},
            )
        if self.requests_bucket is not None:
            self.requests_bucket.level -= 1
        if self.tokens_bucket is not None:
            self.tokens_bucket.level -= cost
        headers = self._headers(now)
        self.in_flight += 1
        self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.in_flight)
        latency = c.latency_ms / 1000 * math.exp(self.rng.gauss(0.0, c.sigma))
        self.latencies.append(latency)
        self.last_ok_arrival_at = now
        try:
            await asyncio.sleep(latency)
        finally:
            self.in_flight -= 1
        used = min(max_tokens, c.completion_tokens)
        if self.tokens_bucket is not None:
            self.tokens_bucket.refill(time.monotonic())
            self.tokens_bucket.level = min(self.tokens_bucket.capacity, self.tokens_bucket.level + max_tokens - used)
        self.counts["ok"] += 1
        self.counts["tokens"] += prompt + used
        self.last_at = time.monotonic()
        return web.json_response(_answer(api, prompt, used), headers=headers)


def _answer(api: str, prompt: int, used: int) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "bench",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": prompt, "output_tokens": used},
        }
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": used, "total_tokens": prompt + used},
    }


async def _start(config: LimitConfig) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(RateLimitedServer(config).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@contextmanager
def in_thread(config: LimitConfig) -> Iterator[str]:
    """The server in a background thread (tests); yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(_start(config), loop).result(10)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _serve_forever(config: LimitConfig, queue: Any) -> None:
    async def main() -> None:
        _, url = await _start(config)
        queue.put(url)
        await asyncio.sleep(3600)  # bounded life; the benchmark terminates it long before

    asyncio.run(main())


@contextmanager
def in_process(config: LimitConfig) -> Iterator[str]:
    """The server in a child process with a core of its own (the benchmark); yields its base URL."""
    queue: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve_forever, args=(config, queue), daemon=True)
    proc.start()
    try:
        yield str(queue.get(timeout=30))
    finally:
        proc.terminate()
        proc.join(10)


def _open(request: Any) -> Any:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    return opener.open(request, timeout=10)


def stats(base_url: str) -> dict[str, Any]:
    with _open(f"{base_url}/stats") as resp:
        return dict(json.loads(resp.read()))


def reset(base_url: str) -> None:
    import urllib.request

    with _open(urllib.request.Request(f"{base_url}/reset", data=b"{}", method="POST")):
        pass
