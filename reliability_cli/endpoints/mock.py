"""The in-process mock endpoint: a seeded, reproducible model with injected failures.

Each attempt's draw is the first 8 bytes of SHA-256 of ``"{seed}|{case}|{trial}|{step}|{attempt}"``
as a fraction of 2^64, so it is the same across processes, shards and resumes, and whatever
the concurrency. The attempt fails when the draw is below ``fail_rate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from ..config.models import MockEndpoint as MockConfig
from ..records import ToolCall, parse_arguments
from ..templating import RenderError, compile_value, render_value
from .base import AttemptError, Request, Response

_SCALE = float(2**64)


def draw(seed: int, case: str, trial: int, step: str, attempt: int) -> float:
    """The attempt's uniform draw in [0, 1)."""
    digest = hashlib.sha256(f"{seed}|{case}|{trial}|{step}|{attempt}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


#: An in-process mock with no latency yields to the event loop once per this many attempts.
YIELD_EVERY = 16


class MockEndpoint:
    """Replies with its ``reply`` template; fails with probability ``fail_rate``."""

    def __init__(self, name: str, config: MockConfig) -> None:
        self.name = name
        self.config = config
        self._reply = compile_value(config.reply)
        self._tool_calls = compile_value(config.tool_calls) if config.tool_calls is not None else None
        self._calls = 0

    async def call(self, request: Request) -> Response:
        cfg = self.config
        key = request.key
        if cfg.latency_ms > 0:
            if cfg.latency_ms / 1000 >= request.timeout_s:
                await asyncio.sleep(request.timeout_s)
                raise AttemptError(
                    "timeout", f"no reply within {request.timeout_s:g} s", latency_ms=request.timeout_s * 1000
                )
            await asyncio.sleep(cfg.latency_ms / 1000)
        else:
            # yield to the event loop every YIELD_EVERY attempts: without an await that suspends,
            # a run on the mock never lets Ctrl-C / SIGTERM (handled on the loop) take effect;
            # a yield per attempt cost a third of an in-process run's time
            self._calls += 1
            if self._calls % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        latency = float(cfg.latency_ms)
        failed = cfg.fail_rate > 0 and draw(request.seed, key.case, key.trial, key.step, key.attempt) < cfg.fail_rate
        if failed:
            if cfg.failure == "error":
                raise AttemptError("http_500", "mock: injected server error", latency_ms=latency, status=500)
            if cfg.failure == "timeout":
                raise AttemptError("timeout", "mock: injected timeout", latency_ms=latency)
            if cfg.failure == "malformed":
                raise AttemptError("parse", "mock: injected malformed response", latency_ms=latency)
            return Response(cfg.wrong_reply, latency_ms=latency)
        try:
            value = render_value(self._reply, request.context)
            calls = _tool_calls(render_value(self._tool_calls, request.context)) if self._tool_calls is not None else ()
        except RenderError as exc:
            raise AttemptError("template", f"mock reply {exc}", latency_ms=latency) from None
        if isinstance(value, str):
            return Response(value, latency_ms=latency, tool_calls=calls)
        return Response(_text_of(value), output=value, latency_ms=latency, tool_calls=calls)

    async def aclose(self) -> None:
        return None


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    """``tool_calls`` rendered: a list of ``{name, arguments}`` (one mapping counts as a list of one)."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise RenderError(f"template: tool_calls must be a list of {{name, arguments}}, got {type(value).__name__}")
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RenderError("template: each of tool_calls needs a name (text) and arguments")
        calls.append(ToolCall(item["name"], parse_arguments(item.get("arguments", {}))))
    return tuple(calls)


def _text_of(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
