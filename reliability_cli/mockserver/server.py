"""A local OpenAI- and Anthropic-compatible HTTP server that injects faults.

Point a pipeline's ``openai`` endpoint at ``{base_url}/v1`` (or its ``anthropic`` endpoint at
``base_url``) to measure how the pipeline copes with errors, throttling, broken bodies, cut
connections and hangs, with no network and no API key. It binds to loopback only.

Routes: ``POST /v1/chat/completions`` (also ``/chat/completions``), ``POST /v1/messages``,
``GET /v1/models`` (also ``/models``; Anthropic's shape when an ``anthropic-version`` header
is sent) and ``GET /health``.

Replies are derived from the request, in this order:

1. the last user message has a line ``REPLY: <text>``: the reply is exactly ``<text>``;
2. the request has ``tools`` and the current turn (the trailing user/system messages, so a
   tool result ends the loop) has a line ``CALL: <tool_name> <json-args>``: a tool call;
3. otherwise ``"echo: "`` + the last user message's text (text parts joined by newlines).

Token counts are whitespace word counts (at least 1). ``stream: true`` is refused with 400.
Which requests get which fault is deterministic: see :mod:`reliability_cli.mockserver_faults`.
Every request to a completion route is counted in ``requests`` and in exactly one outcome:
``ok``, ``wrong``, ``status_<code>``, ``malformed``, ``drop``, ``hang`` or ``bad_request``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from .faults import (
    MALFORMED_BODY,
    WRONG_REPLY,
    FaultConfig,
    FaultPlan,
    error_body,
    parse_status_rates,
    retry_headers,
)

__all__ = ["FaultConfig", "MockServer", "parse_status_rates", "run_in_thread", "serve", "WRONG_REPLY"]

_HANG_S = 3600.0
_SHUTDOWN_S = 2.0
_JSON = "application/json"
_REPLY = re.compile(r"^[ \t]*REPLY:[ \t]?(.*?)\r?$", re.M)
_CALL = re.compile(r"^[ \t]*CALL:[ \t]*(\S+)[ \t]*(.*?)\r?$", re.M)
_OPENAI, _ANTHROPIC = "openai", "anthropic"
_MODEL = "relcheck-mock"


class _BadRequest(Exception):
    """The request cannot be answered; the message says why (sent as a 400)."""


@dataclass(frozen=True)
class _Reply:
    text: str | None = None
    tool: tuple[str, dict[str, Any]] | None = None


def _check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is a loopback address (127.0.0.0/8, ::1, localhost)."""
    addresses = [host] if host != "localhost" else [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    for address in addresses:
        try:
            loopback = ipaddress.ip_address(address.split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the mock server binds to loopback only (127.0.0.1 or ::1), not {host!r}")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and isinstance(part.get("text"), str)
            and part.get("type") in ("text", "input_text")
        )
    return ""


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return message.get("role") in ("tool", "function") or (
        isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )


def _words(text: str) -> int:
    return len(text.split())


def _messages(body: dict[str, Any], api: str) -> list[dict[str, Any]]:
    """The request's messages, with Anthropic's top-level ``system`` as the first one."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _BadRequest("'messages' must be a list of message objects")
    if body.get("stream"):
        raise _BadRequest("streaming is not supported by the relcheck mock server; send stream: false")
    if api == _ANTHROPIC and body.get("system"):
        return [{"role": "system", "content": body["system"]}, *messages]
    return messages


def _reply_for(body: dict[str, Any], messages: list[dict[str, Any]]) -> _Reply:
    last_user = ""
    for message in reversed(messages):
        if message.get("role") == "user" and not _is_tool_result(message):
            last_user = _text(message.get("content"))
            break
    if "REPLY:" in last_user and (match := _REPLY.search(last_user)):
        return _Reply(text=match.group(1))
    if body.get("tools"):
        for message in reversed(messages):
            if message.get("role") == "assistant" or _is_tool_result(message):
                break
            text = _text(message.get("content"))
            if "CALL:" in text and (match := _CALL.search(text)):
                return _Reply(tool=(match.group(1), _tool_args(match.group(2))))
    return _Reply(text="echo: " + last_user)


def _tool_args(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        args = json.loads(text)
    except ValueError as exc:
        raise _BadRequest(f"CALL directive: the arguments are not valid JSON ({exc})") from None
    if not isinstance(args, dict):
        raise _BadRequest("CALL directive: the arguments must be a JSON object")
    return args


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers, content_type=_JSON)


class MockServer:
    """The server: start it, point clients at :attr:`base_url`, read :attr:`counts`, stop it.

    Attributes:
        config: What to inject.
        counts: Requests to the completion routes (``requests``) and what each got.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self.counts: Counter[str] = Counter()
        self._plan = FaultPlan(self.config)
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._seq = 0
        self._stopping: asyncio.Event | None = None
        self._retry_headers = retry_headers(self.config.retry_after)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start serving.

        Args:
            host: A loopback address.
            port: The TCP port; 0 picks a free one (read it from :attr:`port`).

        Raises:
            ValueError: ``host`` is not a loopback address.
            OSError: The port cannot be bound.
        """
        _check_loopback(host)
        host = "127.0.0.1" if host == "localhost" else host
        if self._runner is not None:
            raise RuntimeError("the mock server is already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        chat = partial(self._complete, api=_OPENAI)
        messages = partial(self._complete, api=_ANTHROPIC)
        app.add_routes(
            [
                web.post("/v1/chat/completions", chat),
                web.post("/chat/completions", chat),
                web.post("/v1/messages", messages),
                web.get("/v1/models", self._models),
                web.get("/models", self._models),
                web.get("/health", self._health),
            ]
        )
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_S, handler_cancellation=True
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._stopping = asyncio.Event()
        self._runner = runner
        self._host = host
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving; hanging requests are cut, others get up to 2 s to finish."""
        if self._runner is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("the mock server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}`` (no ``/v1``: OpenAI clients add it, Anthropic's do not)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def _health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        if "anthropic-version" in request.headers:
            return _json(
                {
                    "data": [
                        {"type": "model", "id": _MODEL, "display_name": _MODEL, "created_at": "2024-01-01T00:00:00Z"}
                    ],
                    "has_more": False,
                    "first_id": _MODEL,
                    "last_id": _MODEL,
                }
            )
        return _json(
            {"object": "list", "data": [{"id": _MODEL, "object": "model", "created": 0, "owned_by": "relcheck"}]}
        )

    async def _complete(self, request: web.Request, api: str) -> web.StreamResponse:
        counts = self.counts
        counts["requests"] += 1
        if self.config.quota_exhausted:
            counts["status_429"] += 1
            return _json(error_body(api, 429, quota=True), 429)
        try:
            try:
                body = json.loads(await request.read())
            except ValueError as exc:
                raise _BadRequest(f"the request body is not valid JSON ({exc})") from None
            if not isinstance(body, dict):
                raise _BadRequest("the request body must be a JSON object")
            messages = _messages(body, api)
            reply = _reply_for(body, messages)
        except _BadRequest as exc:
            counts["bad_request"] += 1
            return _json(error_body(api, 400, str(exc)), 400)
        decision = self._plan.decide(body, request.headers.get("x-relcheck-attempt"))
        outcome = decision.outcome
        counts[outcome] += 1
        if outcome == "hang":
            return await self._hang(request)
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if outcome == "ok" or outcome == "wrong":
            if outcome == "wrong":
                reply = _Reply(text=WRONG_REPLY)
            self._seq += 1
            prompt_tokens = max(1, sum(_words(_text(m.get("content"))) for m in messages))
            model = body.get("model") or _MODEL
            return _json(_completion(api, model, reply, self._seq, prompt_tokens))
        if outcome == "malformed":
            return web.Response(body=MALFORMED_BODY, content_type=_JSON)
        if outcome == "drop":
            return await self._drop(request)
        status = int(outcome.removeprefix("status_"))
        headers = self._retry_headers if status in (429, 503) else None
        return _json(error_body(api, status), status, headers)

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        assert self._stopping is not None
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), _HANG_S)
        if request.transport is not None:
            request.transport.close()
        # Nothing can be written any more; aiohttp ignores the failed write.
        return web.StreamResponse()

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
        response.content_length = 2 * len(MALFORMED_BODY)  # promise more than is ever sent
        await response.prepare(request)
        await response.write(MALFORMED_BODY)
        if request.transport is not None:
            # close(), not abort(): the partial body is flushed, then the peer sees EOF early.
            request.transport.close()
        return response


def _completion(api: str, model: str, reply: _Reply, seq: int, tokens_in: int) -> dict[str, Any]:
    """A successful response body in the shape of ``api``."""
    tool_text = reply.tool and f"{reply.tool[0]} {json.dumps(reply.tool[1])}"
    tokens_out = max(1, _words(tool_text or reply.text or ""))
    if api == _ANTHROPIC:
        block = (
            {"type": "text", "text": reply.text or ""}
            if reply.tool is None
            else {"type": "tool_use", "id": f"toolu_mock{seq:010d}", "name": reply.tool[0], "input": reply.tool[1]}
        )
        return {
            "id": f"msg_mock{seq:010d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block],
            "stop_reason": "end_turn" if reply.tool is None else "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool is not None:
        message["tool_calls"] = [
            {
                "id": f"call_mock{seq:010d}",
                "type": "function",
                "function": {"name": reply.tool[0], "arguments": json.dumps(reply.tool[1])},
            }
        ]
    finish = "stop" if reply.tool is None else "tool_calls"
    return {
        "id": f"chatcmpl-mock{seq:010d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
    }


@contextmanager
def run_in_thread(config: FaultConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[MockServer]:
    """Run a :class:`MockServer` on an event loop in a background thread.

    Args:
        config: What to inject; none by default.
        host: A loopback address.
        port: The TCP port; 0 picks a free one.

    Yields:
        The started server; it is stopped when the block exits.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """
    _check_loopback(host)
    server = MockServer(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="relcheck-mock-server", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(host, port), loop).result(timeout=30)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def serve(
    config: FaultConfig, host: str = "127.0.0.1", port: int = 0, on_ready: Callable[[str], None] | None = None
) -> Counter[str]:
    """Serve until SIGINT or SIGTERM, then return what was injected.

    Args:
        config: What to inject.
        host: A loopback address.
        port: The TCP port; 0 picks a free one.
        on_ready: Called with the base URL once the server accepts connections.

    Returns:
        The server's counts (see :attr:`MockServer.counts`).

    Raises:
        ValueError: ``host`` is not a loopback address.
        OSError: The port cannot be bound.
    """
    server = MockServer(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # Windows, or not the main thread: Ctrl-C raises KeyboardInterrupt instead.
        await server.start(host, port)
        try:
            if on_ready is not None:
                on_ready(server.base_url)
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return server.counts
