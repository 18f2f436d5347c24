"""The HTTP endpoints: ``openai``, ``anthropic`` and ``http`` (SPEC §2).

Each endpoint owns one shared ``httpx.AsyncClient`` (see :mod:`.transport`), admits every
request through its adaptive controller (:mod:`.adaptive`: concurrency window, ``rate_limit_rpm``
and ``rate_limit_tpm``, the provider's rate-limit headers, the endpoint-wide pause on
``Retry-After``), waits out throttling (:mod:`.throttle`) and records or replays every exchange
(:mod:`.cassette`). One call is: build the request → admit, send, resending while throttled →
read the response into a :class:`~.base.Response`, or raise :class:`~.base.AttemptError`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .. import scrub
from ..boundedjson import BadJson, depth_exceeds
from ..boundedjson import loads as bounded_loads
from ..records import ToolCall
from ..safetext import JSON_ERRORS
from ..templating import RenderError, compile_value, render_value
from ..textfmt import one_line
from . import cassette as cassettes
from .adaptive import AdaptiveController, Cost, PausedTooLong, Ticket, max_jitter
from .base import AttemptError, Request, Response
from .throttle import MAX_RESENDS, quota_exhausted, retry_after_s, throttle_wait_s
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Exchange,
    error_message,
    make_client,
    send,
    status_kind,
)

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
        # --replay OLD --record NEW: hits are answered from OLD, misses are sent; NEW gets both
        self._recorder = (
            cassettes.open_recorder(record, options.get("pipeline"), self._env, options.get("finished"))
            if record
            else None
        )
        cache = options.get("cache") if not (replay or record) else None
        if cache:
            from . import cache as caches

            self._cache: Any = caches.open_cache(cache, options.get("secrets") or (), bool(options.get("cache_only")))
        else:
            self._cache = None
        self.controller: AdaptiveController = options.get("controller") or AdaptiveController(
            name,
            ceiling=getattr(config, "max_concurrency", None),
            rpm=getattr(config, "rate_limit_rpm", None),
            tpm=getattr(config, "rate_limit_tpm", None),
            enabled=not replay or bool(record),
        )
        self._headers = compile_value(dict(config.headers))
        self._query = compile_value(dict(config.query))
        self._client: Any = None
        self._closed = False
        self.tool_source: Any = None  # the MCP endpoint of ``tools_from`` (see link_tool_sources)
        self._offered: list[dict[str, Any]] | None = None
        key_env = getattr(config, "api_key_env", None)
        live = self._replayer is None or self._recorder is not None
        self._key: str | None = (self._env.get(key_env) or None) if key_env and live else None
        scrub.register(self._key)

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
            raise AttemptError("template", self._scrub(f"endpoint {self.name}: {exc}")) from None
        sent = self._sent(outgoing)
        try:
            return await self._call(request, outgoing, sent)
        except AttemptError as exc:
            exc.sent = sent  # for the run's requests.jsonl
            raise

    def _sent(self, out: Outgoing) -> dict[str, Any]:
        """The request as sent, for ``requests.jsonl``: no headers, a safe URL, ``redact:`` fields removed."""
        return {
            "method": out.method,
            "url": cassettes.safe_url(out.url),
            "body": cassettes.redact(out.body, self.redact_fields),
        }

    async def _call(self, request: Request, outgoing: Outgoing, sent: dict[str, Any]) -> Response:
        cache, cache_key, hit = self._cache, "", None
        if cache is not None:
            cache_key = cache.key(self.config.type, outgoing.method, outgoing.url, outgoing.body, request)
            hit = cache.get(cache_key)
            if hit is None and cache.only:
                raise AttemptError(
                    "cache_miss",
                    f"endpoint {self.name}: no cached response for this request "
                    f"(case {request.key.case}, trial {request.key.trial}, step {request.key.step}, "
                    f"attempt {request.key.attempt}) in {cache.path}; --cache-only makes no call",
                    latency_ms=0.0,
                )
        if hit is not None:
            exchange, throttled, latency, ticket = hit, 0, 0.0, None
        else:
            exchange, throttled, latency, ticket = await self._exchange(request, outgoing)
            if cache is not None:
                cache.put(cache_key, self.config.type, outgoing.url, request.key.step, exchange)
        if not 200 <= exchange.status < 300:
            raise AttemptError(
                status_kind(exchange.status),
                self._status_reason(exchange),
                latency_ms=latency,
                throttled=throttled,
                status=exchange.status,
                fatal=quota_exhausted(exchange.status, exchange.body),
            )
        text = cassettes.redact_text(exchange.body, self.redact_fields)
        try:
            data: Any = bounded_loads(text) if text.strip() else None
        except BadJson as exc:
            if self.needs_json:
                what = "is not valid JSON" if exc.msg.startswith("invalid JSON") else f"is refused: {exc.msg}"
                raise AttemptError(
                    "parse",
                    self._scrub(
                        f"endpoint {self.name}: the {exchange.status} response body {what} ({repr(one_line(text, 80))})"
                    ),
                    latency_ms=latency,
                    throttled=throttled,
                ) from None
            data = _NOT_JSON
        try:
            response = self.read_response(data, text)
        except _Unreadable as exc:
            raise AttemptError(
                "parse", self._scrub(f"endpoint {self.name}: {exc}"), latency_ms=latency, throttled=throttled
            ) from None
        response.latency_ms = latency
        response.throttled = throttled
        response.extra["sent"] = sent
        if hit is not None:
            response.extra["cached"] = True
        if ticket is not None:
            self.controller.usage(ticket, response.tokens_in, response.tokens_out)
        return _scrubbed(response)  # a service echoing a secret back: masked before any check sees it

    async def _exchange(self, request: Request, out: Outgoing) -> tuple[Exchange, int, float, Ticket]:
        """Send, waiting out throttling; returns the final exchange, resends, active latency and
        the controller's ticket of the last send.

        A throttled request is not slept on here: the controller pauses the whole endpoint until
        the ``Retry-After`` and the request queues for admission again like any other — except a
        429 that was the window probing above a known concurrency cap, which waits on its own.
        """
        waited = 0.0
        active_ms = 0.0
        throttled = 0
        cost = self._cost(out)
        charged = 0.0  # of ``waited``, the pause this request is about to sit out (its jitter allowed)
        while True:
            try:
                ticket = await self.controller.acquire(cost, max_pause=self.max_throttle_wait - waited + charged)
            except PausedTooLong as exc:
                status = exc.status or 429
                why = (
                    f"the endpoint is paused for {exc.remaining_s:,.1f} s more (the Retry-After of an HTTP {status})"
                    if exc.status is not None
                    else f"the rate-limit budget the server reported is spent for {exc.remaining_s:,.1f} s more"
                )
                raise AttemptError(
                    status_kind(status),
                    f"endpoint {self.name}: not sent: {why}, longer than this request may still wait "
                    f"(--max-throttle-wait {self.max_throttle_wait:g}; waited {waited:g} s)",
                    latency_ms=active_ms,
                    throttled=throttled,
                    status=status,
                ) from None
            try:
                exchange, replayed = await self._send_once(
                    request, out, request.timeout_s - active_ms / 1000, resend=throttled
                )
            except AttemptError as exc:
                self.controller.release(ticket, kind=exc.kind)
                exc.latency_ms = active_ms + (exc.latency_ms or 0.0)
                exc.throttled = throttled
                raise
            active_ms += exchange.latency_ms
            asked = retry_after_s(exchange.status, exchange.headers)
            if asked is not None and quota_exhausted(exchange.status, exchange.body):
                asked = None
            # never 0: a floor that grows with each resend
            wait = None if asked is None else throttle_wait_s(asked, throttled)
            own_wait = self.controller.release(
                ticket, status=exchange.status, headers=exchange.headers, retry_after=wait if not replayed else None
            )
            if wait is None:
                return exchange, throttled, active_ms, ticket
            if waited + wait > self.max_throttle_wait or throttled >= MAX_RESENDS:
                too_long = wait == asked and waited + wait > self.max_throttle_wait
                raise AttemptError(
                    status_kind(exchange.status),
                    f"{self._status_reason(exchange)}; "
                    + (f"the server asks to wait {wait:,.1f} s; " if too_long else "")
                    + f"still throttled after waiting {waited:g} s in all "
                    f"(--max-throttle-wait {self.max_throttle_wait:g})",
                    latency_ms=active_ms,
                    throttled=throttled,
                    status=exchange.status,
                )
            throttled += 1
            waited += wait  # the pause is excluded from latency and from the deadline
            charged = wait + max_jitter(wait)
            if own_wait:  # a probe above a known concurrency cap: only this request waits
                await self.controller.clock.sleep(own_wait)
                charged = 0.0

    def _cost(self, out: Outgoing) -> Cost:
        body = out.body
        if isinstance(body, dict) and isinstance(body.get("messages"), list):
            chars = sum(
                len(m["content"]) for m in body["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str)
            )
            system = body.get("system")
            chars += len(system) if isinstance(system, str) else 0
            limit = body.get("max_tokens") or body.get("max_completion_tokens")
            return self.controller.estimate(chars, limit if isinstance(limit, int) else None)
        chars = len(json.dumps(body)) if body is not None else 0
        return self.controller.estimate(chars, None)

    async def _send_once(
        self, request: Request, out: Outgoing, deadline_s: float, resend: int = 0
    ) -> tuple[Exchange, bool]:
        """One exchange, and whether it came from the cassette being replayed."""
        if self._replayer is not None:
            try:
                exchange = self._replayer.answer(self.name, request, out.url, out.body, self.redact_fields)
            except AttemptError as exc:
                if self._recorder is None:
                    raise
                if exc.kind != "replay_miss":  # a recorded failure: copied to the new cassette
                    self._record(request, out, error=exc)
                    raise
                # a miss while recording: sent live below, and recorded
            else:
                if self._recorder is not None:
                    self._record(request, out, exchange=exchange)
                return exchange, True
        if self._client is None:
            self._client = make_client(self.controller.ceiling)
        content = None if out.body is None else json.dumps(out.body, ensure_ascii=False).encode("utf-8", JSON_ERRORS)
        try:
            headers = {**out.headers, ATTEMPT_HEADER: attempt_identity(request, resend)}
            exchange = await send(
                self._client,
                out.method,
                out.url,
                headers=headers,
                params=None,
                content=content,
                deadline_s=deadline_s,
                max_bytes=getattr(self.config, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
            )
        except AttemptError as exc:
            exc.reason = f"endpoint {self.name}: {self._scrub(exc.reason)}"
            if self._recorder is not None:
                self._record(request, out, error=exc)
            raise
        if self._recorder is not None:
            self._record(request, out, exchange=exchange)
        return exchange, False

    # ---------------------------------------------------------------- helpers

    def _record(self, request: Request, out: Outgoing, **outcome: Any) -> None:
        """One exchange (``exchange=``) or failure (``error=``) to the cassette being recorded."""
        assert self._recorder is not None
        self._recorder.record(
            self.name, request, out.method, out.url, out.headers, out.body, redact_fields=self.redact_fields, **outcome
        )

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
        """Never let a secret into a reason, even if a server echoes it."""
        return scrub.scrub(text)

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
        if self._cache is not None:
            from . import cache as caches

            caches.release(self._cache)
            self._cache = None


def _scrubbed(response: Response) -> Response:
    if not scrub.secrets():
        return response
    response.text = scrub.scrub(response.text)
    response.output = scrub.scrub_value(response.output)
    response.tool_calls = tuple(
        ToolCall(scrub.scrub(c.name), scrub.scrub_value(c.arguments)) for c in response.tool_calls
    )
    return response


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


#: the characters ``urllib.parse.quote`` never encodes (RFC 3986's unreserved set)
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def attempt_identity(request: Request, resend: int = 0) -> str:
    """``case/trial/step/attempt/resend/phase``, each part percent-encoded (ASCII only; a lone
    surrogate in an id is encoded as its ``surrogatepass`` bytes, as the seeded draws hash it)."""
    from urllib.parse import quote as _quote

    def quote(text: str, safe: str = "") -> str:
        if _UNRESERVED.fullmatch(text):  # what quote() leaves as it is (most ids): not encoded again
            return text
        return _quote(text.encode("utf-8", "surrogatepass"), safe=safe)

    key = request.key
    return "/".join(
        (
            quote(key.case, safe=""),
            str(key.trial),
            quote(key.step, safe=""),
            str(key.attempt),
            str(resend),
            quote(request.phase, safe=""),
        )
    )


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
        body = {"model": cfg.model, "messages": [dict(m) for m in request.messages], **cfg.params, **request.params}
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
            parts = []
            for i, part in enumerate(content):
                text_part = part.get("text") if isinstance(part, dict) else None
                if not isinstance(text_part, str):
                    raise _Unreadable(f"choices[0].message.content[{i}] has no text string ({_kind(text_part)})")
                parts.append(text_part)
            content = "".join(parts)
        elif content is not None and not isinstance(content, str):
            raise _Unreadable(f"choices[0].message.content is {_kind(content)}, not text")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise _Unreadable(f"choices[0].message.tool_calls is {_kind(tool_calls)}, not a list")
        calls = []
        for i, call in enumerate(tool_calls or ()):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise _Unreadable(f"choices[0].message.tool_calls[{i}] has no function name")
            calls.append(ToolCall(fn["name"], _arguments(fn.get("arguments"), i)))
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        return Response(
            content or "",
            tool_calls=tuple(calls),
            tokens_in=_tokens(usage, "prompt_tokens"),
            tokens_out=_tokens(usage, "completion_tokens"),
        )


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
        for i, block in enumerate(blocks):
            if not isinstance(block, dict):
                raise _Unreadable(f"content[{i}] is {_kind(block)}, not a content block")
            if block.get("type") == "text":
                if not isinstance(block.get("text"), str):
                    raise _Unreadable(
                        f"content[{i}] is a text block without a text string ({_kind(block.get('text'))})"
                    )
                texts.append(block["text"])
            elif block.get("type") == "tool_use":
                if not isinstance(block.get("name"), str):
                    raise _Unreadable(f"content[{i}] is a tool_use block without a name")
                calls.append(ToolCall(block["name"], block.get("input")))
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return Response(
            "".join(texts),
            tool_calls=tuple(calls),
            tokens_in=_tokens(usage, "input_tokens"),
            tokens_out=_tokens(usage, "output_tokens"),
        )


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
                raise _Unreadable(
                    f"output_path {self.config.output_path} not found in the response ({repr(one_line(text, 80))})"
                ) from None
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


#: Token counts above this (or below zero) are not a count: the reply is unreadable (``parse``).
MAX_TOKENS = 10**9


def _tokens(usage: Mapping[str, Any], name: str) -> int | None:
    """A usage count: ``None`` when absent or not an integer; :class:`_Unreadable` when negative
    or absurd (a server must not make costs negative or astronomical)."""
    value = usage.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not 0 <= value <= MAX_TOKENS:
        raise _Unreadable(
            f"usage.{name} is {str(value)[:20] + ('…' if len(str(value)) > 20 else '')}, "
            f"not a token count (0 to {MAX_TOKENS:,})"
        )
    return value


def _arguments(raw: Any, index: int) -> Any:
    """OpenAI sends tool-call arguments as a JSON string: parsed where it parses (else kept as
    the string, for the ``tool-call`` check to judge); one nested past the budget is unreadable."""
    if isinstance(raw, str):
        try:
            return bounded_loads(raw)
        except BadJson as exc:
            if exc.msg.startswith("invalid JSON"):
                return raw
            raise _Unreadable(f"tool_calls[{index}].function.arguments: {exc.msg}") from None
    if depth_exceeds(raw):
        raise _Unreadable(f"tool_calls[{index}].function.arguments nested too deeply")
    return raw


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def build(name: str, config: Any, options: Mapping[str, Any]) -> _HttpEndpoint:
    """The endpoint for an ``openai``, ``anthropic`` or ``http`` config."""
    kinds: dict[str, type[_HttpEndpoint]] = {
        "openai": OpenAIEndpoint,
        "anthropic": AnthropicEndpoint,
        "http": HttpToolEndpoint,
    }
    try:
        cls = kinds[config.type]
    except KeyError:
        raise ValueError(f"endpoint {name}: unknown type {config.type!r}") from None
    return cls(name, config, options)
