"""The HTTP endpoints: ``openai``, ``anthropic`` and ``http`` (SPEC §2).

Each endpoint owns one shared ``httpx.AsyncClient`` (see :mod:`.transport`), paces requests
(``rate_limit_rpm``), waits out throttling (:mod:`.throttle`) and records or replays every
exchange (:mod:`.cassette`). One call is: build the request → send, resending while
throttled → read the response into a :class:`~.base.Response`, or raise
:class:`~.base.AttemptError`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..records import ToolCall, parse_arguments
from ..templating import RenderError, compile_value, render_value
from ..textfmt import one_line
from . import cassette as cassettes
from .base import AttemptError, Request, Response
from .throttle import MAX_RESENDS, Pacer, quota_exhausted, retry_after_s
from .transport import Exchange, error_message, make_client, send, status_kind

__all__ = ["AnthropicEndpoint", "HttpToolEndpoint", "OpenAIEndpoint", "build"]


@dataclass(frozen=True)
class Outgoing:
    """A request ready to send: ``url`` already carries the query string."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Any  # the JSON value sent, or None for no body


class _HttpEndpoint:
    """What the three HTTP endpoint types share: client, pacing, throttling, cassette."""

    def __init__(self, name: str, config: Any, options: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config
        environ = options.get("environ")  # tests; the process environment otherwise
        self._env: Mapping[str, str] = os.environ if environ is None else environ
        self.max_throttle_wait = float(options.get("max_throttle_wait", 120.0))
        self.redact_fields = tuple(getattr(config, "redact", ()) or ())
        replay, record = options.get("replay"), options.get("record")
        self._replayer = cassettes.open_replayer(replay) if replay else None
        self._recorder = (cassettes.open_recorder(record, options.get("pipeline"), self._env)
                          if record and not replay else None)
        rpm = getattr(config, "rate_limit_rpm", None)
        self._pacer = Pacer(rpm) if rpm and not replay else None
        self._headers = compile_value(dict(config.headers))
        self._query = compile_value(dict(config.query))
        self._client: Any = None
        self._closed = False
        self.tool_source: Any = None  # the MCP endpoint of ``tools_from`` (see link_tool_sources)
        self._offered: list[dict[str, Any]] | None = None
        key_env = getattr(config, "api_key_env", None)
        self._key: str | None = (self._env.get(key_env) or None) if key_env and not self._replayer else None

    # ---------------------------------------------------------------- subclass hooks

    def build_request(self, request: Request) -> Outgoing:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_response(self, data: Any, text: str) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    needs_json = True  # a 2xx body that is not JSON is a ``parse`` error

    # ---------------------------------------------------------------- the call

    async def call(self, request: Request) -> Response:
        if self.tool_source is not None and self._offered is None:
            self._offered = await self.tool_source.offered_tools(self.config.type)  # once per run
        try:
            outgoing = self.build_request(request)
        except RenderError as exc:
            raise AttemptError("template", f"endpoint {self.name}: {exc}") from None
        exchange, throttled, latency = await self._exchange(request, outgoing)
        if not 200 <= exchange.status < 300:
            raise AttemptError(status_kind(exchange.status), self._status_reason(exchange), latency_ms=latency,
                               throttled=throttled, status=exchange.status,
                               fatal=quota_exhausted(exchange.status, exchange.body))
        text = cassettes.redact_text(exchange.body, self.redact_fields)
        try:
            data: Any = json.loads(text) if text.strip() else None
        except ValueError:
            if self.needs_json:
                raise AttemptError("parse", f"endpoint {self.name}: the {exchange.status} response body is not "
                                   f"valid JSON ({repr(one_line(text, 80))})", latency_ms=latency, throttled=throttled) from None
            data = _NOT_JSON
        try:
            response = self.read_response(data, text)
        except _Unreadable as exc:
            raise AttemptError("parse", f"endpoint {self.name}: {exc}", latency_ms=latency,
                               throttled=throttled) from None
        response.latency_ms = latency
        response.throttled = throttled
        key = self.api_key()
        if key and len(key) >= 4 and key in response.text:  # a service echoing our key back
            response.text = response.text.replace(key, "***")
            if response.output is not None:
                response.output = json.loads(json.dumps(response.output).replace(json.dumps(key)[1:-1], "***"))
        return response

    async def _exchange(self, request: Request, out: Outgoing) -> tuple[Exchange, int, float]:
        """Send, waiting out throttling; returns the final exchange, resends and active latency."""
        waited = 0.0
        active_ms = 0.0
        throttled = 0
        while True:
            try:
                exchange = await self._send_once(request, out, request.timeout_s - active_ms / 1000,
                                                 resend=throttled)
            except AttemptError as exc:
                exc.latency_ms = active_ms + (exc.latency_ms or 0.0)
                exc.throttled = throttled
                raise
            active_ms += exchange.latency_ms
            wait = retry_after_s(exchange.status, exchange.headers)
            if wait is None or quota_exhausted(exchange.status, exchange.body):
                return exchange, throttled, active_ms
            if waited + wait > self.max_throttle_wait or throttled >= MAX_RESENDS:
                raise AttemptError(
                    status_kind(exchange.status),
                    f"{self._status_reason(exchange)}; still throttled after waiting {waited:g} s in all "
                    f"(--max-throttle-wait {self.max_throttle_wait:g})",
                    latency_ms=active_ms, throttled=throttled, status=exchange.status)
            throttled += 1
            waited += wait
            if self._replayer is None and wait > 0:
                await asyncio.sleep(wait)  # excluded from latency and from the deadline

    async def _send_once(self, request: Request, out: Outgoing, deadline_s: float,
                         resend: int = 0) -> Exchange:
        if self._replayer is not None:
            return self._replayer.answer(self.name, request, out.url, out.body, self.redact_fields)
        if self._pacer is not None:
            await self._pacer.wait()
        if self._client is None:
            self._client = make_client(getattr(self.config, "max_concurrency", None) or 256)
        content = None if out.body is None else json.dumps(out.body, ensure_ascii=False).encode()
        try:
            headers = {**out.headers, ATTEMPT_HEADER: attempt_identity(request, resend)}
            exchange = await send(self._client, out.method, out.url, headers=headers, params=None,
                                  content=content, deadline_s=deadline_s)
        except AttemptError as exc:
            exc.reason = f"endpoint {self.name}: {self._scrub(exc.reason)}"
            if self._recorder is not None:
                self._recorder.record(self.name, request, out.method, out.url, out.headers, out.body,
                                      error=exc, redact_fields=self.redact_fields)
            raise
        if self._recorder is not None:
            self._recorder.record(self.name, request, out.method, out.url, out.headers, out.body,
                                  exchange=exchange, redact_fields=self.redact_fields)
        return exchange

    # ---------------------------------------------------------------- helpers

    def api_key(self) -> str | None:
        """The key from ``api_key_env`` (read when the endpoint is built); never needed (nor
        sent) when replaying."""
        return self._key

    def _status_reason(self, exchange: Exchange) -> str:
        reason = f"endpoint {self.name}: HTTP {exchange.status}: {error_message(exchange.body)}"
        key_env = getattr(self.config, "api_key_env", None)
        if exchange.status in (401, 403) and key_env and not self._env.get(key_env) and self._replayer is None:
            reason += f" ({key_env} is not set)"
        return self._scrub(reason)

    def _scrub(self, text: str) -> str:
        """Never let the key's value into a reason, even if a server echoes it."""
        key = self.api_key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def render_extras(self, request: Request) -> tuple[dict[str, str], dict[str, str]]:
        if not self._headers and not self._query:
            return {}, {}
        headers = {k: str(v) for k, v in render_value(self._headers, request.context, native=False).items()}
        query = {k: str(v) for k, v in render_value(self._query, request.context, native=False).items()}
        return headers, query

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            await self._client.aclose()
        for held in (self._recorder, self._replayer):
            if held is not None:
                cassettes.release(held)


class _Unreadable(Exception):
    """A 2xx response without what the endpoint type needs (``parse``)."""


_NOT_JSON = object()


def _with_query(url: str, query: Mapping[str, str]) -> str:
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(query)


#: Sent with every request (not recorded in cassettes): which attempt this is, so a server
#: such as ``relcheck mock-server`` can key a deterministic draw on it instead of on history.
ATTEMPT_HEADER = "x-relcheck-attempt"


def attempt_identity(request: Request, resend: int = 0) -> str:
    """``case/trial/step/attempt/resend/phase``, each part percent-encoded (ASCII only)."""
    from urllib.parse import quote

    key = request.key
    return "/".join((quote(key.case, safe=""), str(key.trial), quote(key.step, safe=""),
                     str(key.attempt), str(resend), quote(request.phase, safe="")))


def _json_headers(extra: Mapping[str, str]) -> dict[str, str]:
    return {"content-type": "application/json", "accept": "application/json", **extra}


class OpenAIEndpoint(_HttpEndpoint):
    """``POST {base_url}{path}``: OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM."""

    def build_request(self, request: Request) -> Outgoing:
        cfg = self.config
        extra, query = self.render_extras(request)
        headers: dict[str, str] = {}
        key = self.api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        headers.update(extra)
        body = {"model": cfg.model, "messages": [dict(m) for m in request.messages],
                **cfg.params, **request.params}
        if self._offered:
            body.setdefault("tools", self._offered)
        url = _with_query(self._endpoint_url, query)
        return Outgoing("POST", url, _json_headers(headers), body)

    @functools.cached_property
    def _endpoint_url(self) -> str:
        return str(self.config.base_url.rstrip("/") + "/" + self.config.path.lstrip("/"))

    def read_response(self, data: Any, text: str) -> Response:
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise _Unreadable(f"the response has no choices[0].message ({repr(one_line(text, 80))})") from None
        if not isinstance(message, dict):
            raise _Unreadable("choices[0].message is not an object")
        content = message.get("content")
        if isinstance(content, list):  # some servers send content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        calls = []
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                calls.append(ToolCall(fn["name"], parse_arguments(fn.get("arguments"))))
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        return Response(content if isinstance(content, str) else "", tool_calls=tuple(calls),
                        tokens_in=_int(usage.get("prompt_tokens")), tokens_out=_int(usage.get("completion_tokens")))


class AnthropicEndpoint(_HttpEndpoint):
    """``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""

    def build_request(self, request: Request) -> Outgoing:
        cfg = self.config
        extra, query = self.render_extras(request)
        headers = {"anthropic-version": cfg.anthropic_version}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        headers.update(extra)
        system = [m["content"] for m in request.messages if m.get("role") == "system"]
        messages = [dict(m) for m in request.messages if m.get("role") != "system"]
        body: dict[str, Any] = {"model": cfg.model, "max_tokens": cfg.max_tokens, "messages": messages}
        if system:
            body["system"] = "\n\n".join(system)
        body.update(cfg.params)
        body.update(request.params)
        if self._offered:
            body.setdefault("tools", self._offered)
        url = _with_query(cfg.base_url.rstrip("/") + "/v1/messages", query)
        return Outgoing("POST", url, _json_headers(headers), body)

    def read_response(self, data: Any, text: str) -> Response:
        blocks = data.get("content") if isinstance(data, dict) else None
        if not isinstance(blocks, list):
            raise _Unreadable(f"the response has no content blocks ({repr(one_line(text, 80))})")
        texts, calls = [], []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                calls.append(ToolCall(block["name"], block.get("input")))
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return Response("".join(texts), tool_calls=tuple(calls), tokens_in=_int(usage.get("input_tokens")),
                        tokens_out=_int(usage.get("output_tokens")))


class HttpToolEndpoint(_HttpEndpoint):
    """Any JSON service: templated ``method``/``url``/``headers``/``json``; ``output_path`` into the reply."""

    needs_json = False

    def __init__(self, name: str, config: Any, options: Mapping[str, Any]) -> None:
        super().__init__(name, config, options)
        self._url = compile_value(config.url)
        self._body = compile_value(config.json_body)
        self._path = _parse_path(config.output_path) if config.output_path else None
        self.needs_json = self._path is not None

    def build_request(self, request: Request) -> Outgoing:
        extra, query = self.render_extras(request)
        headers: dict[str, str] = {}
        key = self.api_key()
        if key and not any(k.lower() == "authorization" for k in extra):  # an explicit one wins
            headers["authorization"] = f"Bearer {key}"
        headers.update(extra)
        body = render_value(self._body, request.context) if self.config.json_body is not None else None
        if body is not None:
            headers = _json_headers(headers)
        url = _with_query(str(render_value(self._url, request.context, native=False)), query)
        return Outgoing(self.config.method, url, headers, body)

    def read_response(self, data: Any, text: str) -> Response:
        if self._path is None:
            return Response(text)
        value = data
        for segment in self._path:
            try:
                value = value[segment]
            except (KeyError, IndexError, TypeError):
                raise _Unreadable(f"output_path {self.config.output_path} not found in the response "
                                  f"({repr(one_line(text, 80))})") from None
        if isinstance(value, str):
            return Response(value)
        return Response(json.dumps(value, ensure_ascii=False), output=value)


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` → ``("a", "b", 0, "c")``."""
    out: list[str | int] = []
    for name, index in _SEGMENT.findall(path):
        out.append(int(index) if index else name)
    return tuple(out)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build(name: str, config: Any, options: Mapping[str, Any]) -> _HttpEndpoint:
    """The endpoint for an ``openai``, ``anthropic`` or ``http`` config."""
    kinds: dict[str, type[_HttpEndpoint]] = {"openai": OpenAIEndpoint, "anthropic": AnthropicEndpoint,
                                             "http": HttpToolEndpoint}
    try:
        cls = kinds[config.type]
    except KeyError:
        raise ValueError(f"endpoint {name}: unknown type {config.type!r}") from None
    return cls(name, config, options)
