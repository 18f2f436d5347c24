"""HTTP transport: one shared client per endpoint, a total deadline, and the one error map.

This is the only module that knows httpx's (and aiohttp's) exceptions. Every way an exchange
can go wrong becomes an :class:`~.base.AttemptError` with an ``error_kind`` of SPEC §4:

==========================================================  ===========
what happened                                                error_kind
==========================================================  ===========
the total deadline passed (``timeout_s``), idle timeouts     ``timeout``
connection refused, DNS failure, TLS handshake, bad URL      ``connect``
connection dropped or reset, broken HTTP, short body         ``protocol``
a status other than 2xx                                      ``http_<status>``
a 2xx body that is not the JSON expected                     ``parse``
a body past ``max_response_bytes`` (raw or decoded)          ``too_large``
==========================================================  ===========

Every body is read in chunks and counted, and a ``content-encoding`` (gzip, deflate) is
decoded here with the same cap on its *decoded* size, so neither an endless chunked body nor
a gzip bomb can grow past ``max_response_bytes`` (default :data:`DEFAULT_MAX_RESPONSE_BYTES`,
10 MiB) on either transport; both stop as soon as the cap is passed, within the deadline.

Reasons are built here from the exception *type* and host, never from ``str(exc)`` of a
request (which may carry a URL with a query key) and never from headers, so no secret can
reach ``attempts.jsonl`` through an error message.

httpx is the HTTP API: requests and responses are ``httpx.Request`` and ``httpx.Response``, and
the transport is an ``httpx.AsyncBaseTransport``. By default that transport is
:class:`AiohttpTransport`, aiohttp's connection pool behind httpx's interface, measured many
times faster than httpx's own transport at high concurrency (README, "Transport"). Set
``RELCHECK_HTTP_TRANSPORT=httpx`` to use httpx's default transport instead.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import sys
import time
import zlib
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

if "httpx" not in sys.modules:  # pragma: no branch - imported once per process
    # httpx's package imports its command-line client when click, rich.syntax and pygments are
    # installed (~0.1 s, a tenth of a one-case run); relcheck never runs it. An import of a
    # module set to None fails, and httpx then defines a stub ``main`` instead; the entry is
    # removed at once, so ``import httpx._main`` still works for whoever wants it.
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        if sys.modules.get("httpx._main", False) is None:
            del sys.modules["httpx._main"]
import httpx

from ..config.models import DEFAULT_MAX_RESPONSE_BYTES
from ..textfmt import one_line
from .base import AttemptError
from .ratelimit_headers import HEADER_NAMES

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Exchange",
    "decode_body",
    "make_client",
    "send",
    "classify",
    "status_kind",
    "transport_name",
]

T = TypeVar("T")

_MAX_BYTES_EXT = "relcheck.max_response_bytes"
#: What relcheck can decode (under a size cap); servers are asked for nothing else.
ACCEPT_ENCODING = "gzip, deflate"
_CHUNK = 64 * 1024


class TooLarge(Exception):
    """The body passed the cap (``raw``: as sent; else once decoded)."""

    def __init__(self, limit: int, raw: bool) -> None:
        super().__init__(limit)
        self.limit = limit
        self.raw = raw


class Undecodable(Exception):
    """A ``content-encoding`` relcheck did not ask for, or a corrupt compressed body."""


#: The response headers anything downstream reads (throttling, the cassette's allow-list).
KEPT_HEADERS = ("content-type", "retry-after", "retry-after-ms", "anthropic-version", "openai-version", *HEADER_NAMES)
_KEPT = frozenset(KEPT_HEADERS)


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange that got a complete response (any status)."""

    status: int
    headers: Mapping[str, str]  # lower-case names; only KEPT_HEADERS from a live exchange
    body: bytes
    latency_ms: float


def transport_name() -> str:
    """``aiohttp`` (default) or ``httpx``, from ``RELCHECK_HTTP_TRANSPORT``."""
    name = os.environ.get("RELCHECK_HTTP_TRANSPORT", "aiohttp").strip().lower()
    return "httpx" if name == "httpx" else "aiohttp"


class Client(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that also keeps a reference to its transport.

    :func:`send` hands requests straight to the transport: relcheck needs none of what
    ``AsyncClient.send`` adds per request (cookie jar, auth flow, redirects, merging of
    defaults), and the cookie jar alone cost about a tenth of each request's time under load.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.raw_transport = transport


def make_client(max_connections: int = 256, transport: str | None = None) -> Client:
    """The endpoint's one shared client. Call inside the event loop that will use it."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    kind = transport or transport_name()
    chosen: httpx.AsyncBaseTransport
    if kind == "aiohttp":
        chosen = AiohttpTransport(max_connections)
    else:
        chosen = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=_ssl_context())
    return Client(chosen, limits=limits, timeout=None, follow_redirects=False, trust_env=False)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface on one ``aiohttp.ClientSession``, reading each body whole.

    relcheck never streams a response: it needs the status, a few headers and the whole
    body. So this adapter reads the body with aiohttp and hands httpx a complete
    ``httpx.Response`` (httpx still decodes any ``content-encoding``), instead of wrapping
    aiohttp's stream in httpx's streaming machinery as the general-purpose ``httpx-aiohttp``
    package does; that wrapping cost about a tenth of relcheck's time per request at high
    concurrency (``bench/RESULTS.md``). aiohttp's exceptions pass through unchanged: :func:`classify`
    maps them. No aiohttp timeout is set: :func:`send` enforces one total deadline.
    """

    def __init__(self, max_connections: int = 256) -> None:
        self.max_connections = max_connections
        self._session: Any = None
        self._url_type: Any = None

    def _open(self) -> Any:
        import aiohttp
        import yarl

        self._url_type = yarl.URL
        # No TLS context here: loading certificates costs ~0.1 s, which a run against a plain
        # http:// endpoint (a local server, a gateway) would pay for nothing; https requests
        # pass httpx's context (certifi's roots) themselves.
        connector = aiohttp.TCPConnector(limit=self.max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False, trust_env=False
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        body = request.content  # relcheck always sends bytes (or nothing)
        url = self._url_type(str(request.url), encoded=True)  # httpx's URL is already percent-encoded
        limit = request.extensions.get(_MAX_BYTES_EXT, DEFAULT_MAX_RESPONSE_BYTES)
        # True is aiohttp's default (unused for http://)
        tls: ssl.SSLContext | bool = _ssl_context() if request.url.scheme == "https" else True
        async with session.request(
            request.method,
            url,
            headers=_items(request.headers),
            data=body or None,
            allow_redirects=False,
            ssl=tls,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK):  # raw: auto_decompress is off
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit, raw=True)
                chunks.append(chunk)
        # a raw stream, not ``content=``: httpx would decode (unbounded) a body given as content
        return httpx.Response(
            response.status, headers=response.raw_headers, stream=_Raw(b"".join(chunks)), request=request
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _items(headers: httpx.Headers) -> list[tuple[str, str]]:
    """``headers.multi_items()`` (lower-case names, each occurrence), reading the encoding once:
    httpx's ``multi_items`` reads its ``encoding`` property twice a header."""
    encoding = headers.encoding
    return [(key.lower().decode(encoding), value.decode(encoding)) for key, value in headers.raw]


class _Raw(httpx.AsyncByteStream):
    """A body already read, handed to httpx still encoded (decoded by :func:`decode_body`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> Any:
        yield self._data


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's verifying context (certifi's roots), built once per process and only for the
    first ``https://`` request: loading the certificates takes about 0.1 s on a slow machine."""
    return httpx.create_ssl_context(trust_env=False)


USER_AGENT = "relcheck"


async def _exchange(client: httpx.AsyncClient, request: httpx.Request, limit: int) -> tuple[httpx.Response, bytes]:
    """The response and its raw body, read chunk by chunk under ``limit`` (decoded by :func:`send`)."""
    transport = getattr(client, "raw_transport", None)
    if transport is None:
        response = await client.send(request, stream=True)
    else:
        response = await transport.handle_async_request(request)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(limit, raw=True)
            chunks.append(chunk)
    finally:
        await response.aclose()
    return response, b"".join(chunks)


def decode_body(raw: bytes, encoding: str, limit: int) -> bytes:
    """``raw`` decoded by its ``content-encoding`` (gzip, deflate, identity), never more than
    ``limit`` bytes out: :class:`TooLarge` as soon as decoding would pass it."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    data = raw
    for coding in reversed(codings):  # the last one applied is undone first
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, zlib.MAX_WBITS | 16, limit)
        elif coding == "deflate":  # zlib-wrapped per the RFC; some servers send it raw
            try:
                data = _inflate(data, zlib.MAX_WBITS, limit)
            except Undecodable:
                data = _inflate(data, -zlib.MAX_WBITS, limit)
        else:
            raise Undecodable(f"unsupported content-encoding {coding[:40]!r}")
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    pending = data
    try:
        while True:
            piece = inflater.decompress(pending, limit + 1 - size)
            size += len(piece)
            if size > limit:
                raise TooLarge(limit, raw=False)
            out.append(piece)
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                break
    except zlib.error as exc:
        raise Undecodable(f"corrupt compressed body ({exc})") from None
    return b"".join(out)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None,
    content: bytes | None,
    deadline_s: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Exchange:
    """Send one request and read the whole body within ``deadline_s`` seconds in all.

    Raises:
        AttemptError: ``timeout``, ``connect``, ``protocol``, ``parse`` (an undecodable body)
            or ``too_large`` (statuses are not errors here).
    """
    started = time.perf_counter()
    if deadline_s <= 0:
        raise AttemptError("timeout", "no time left before the deadline", latency_ms=0.0)
    # httpx's own timeouts are idle limits; they only back up the total deadline below.
    backstop = deadline_s + 1.0
    try:
        request = httpx.Request(
            method,
            _url(url),
            headers={"user-agent": USER_AGENT, "accept-encoding": ACCEPT_ENCODING, **headers},
            params=params,
            content=content,
            extensions={
                "timeout": {"connect": backstop, "read": backstop, "write": backstop, "pool": backstop},
                _MAX_BYTES_EXT: max_bytes,
            },
        )
        response, raw = await _within(_exchange(client, request, max_bytes), deadline_s)
        kept, coding = _kept_headers(response.headers)
        body = decode_body(raw, coding, max_bytes) if coding else raw
    except TooLarge as exc:
        latency = (time.perf_counter() - started) * 1000
        what = "as sent" if exc.raw else "once decoded"
        raise AttemptError(
            "too_large",
            f"the response body from {_host(url)} passed max_response_bytes "
            f"({_size(exc.limit)}) {what}; reading stopped",
            latency_ms=latency,
        ) from None
    except Undecodable as exc:
        latency = (time.perf_counter() - started) * 1000
        raise AttemptError(
            "parse", f"the response body from {_host(url)} could not be decoded: {exc}", latency_ms=latency
        ) from None
    except (TimeoutError, asyncio.TimeoutError):
        latency = (time.perf_counter() - started) * 1000
        raise AttemptError(
            "timeout", f"no complete response within {deadline_s:g} s (total deadline)", latency_ms=latency
        ) from None
    except Exception as exc:  # every transport failure, mapped in one place
        latency = (time.perf_counter() - started) * 1000
        kind, reason = classify(exc, url)
        raise AttemptError(kind, reason, latency_ms=latency) from None
    latency = (time.perf_counter() - started) * 1000
    return Exchange(response.status_code, kept, body, latency)


def _kept_headers(headers: httpx.Headers) -> tuple[dict[str, str], str]:
    """The :data:`KEPT_HEADERS` found (a repeated one joined with ``", "``, as ``headers[name]``
    joins it) and the ``content-encoding`` (``""`` if none), in one pass over the headers."""
    kept: dict[str, str] = {}
    codings: list[str] = []
    for name, value in _items(headers):
        if name in _KEPT:
            kept[name] = f"{kept[name]}, {value}" if name in kept else value
        elif name == "content-encoding":
            codings.append(value)
    return kept, ", ".join(codings)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % (scale // 1024 or 1) == 0:
            return f"{n / scale:g} {unit}"
    return f"{n:,} bytes"


def _url(url: str) -> httpx.URL:
    """Parsed once per distinct URL (parsing is a measurable share of a request's cost)."""
    parsed = _URLS.get(url)
    if parsed is None:
        if len(_URLS) >= 512:
            _URLS.clear()
        parsed = _URLS[url] = httpx.URL(url)
    return parsed


_URLS: dict[str, httpx.URL] = {}


if sys.version_info >= (3, 11):

    async def _within(awaitable: Awaitable[T], seconds: float) -> T:
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # pragma: no cover - Python 3.10

    async def _within(awaitable: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(awaitable, seconds)


def classify(exc: BaseException, url: str = "") -> tuple[str, str]:
    """``(error_kind, reason)`` for an exception raised while sending or reading."""
    where = _host(url)
    for item in _chain(exc):
        found = _classify_aiohttp(item, where)
        if found is not None:
            return found
    for item in _chain(exc):
        found = _classify_httpx(item, where)
        if found is not None:
            return found
    for item in _chain(exc):
        if isinstance(item, ConnectionRefusedError):
            return "connect", f"connection refused by {where}"
        if isinstance(item, (TimeoutError, asyncio.TimeoutError)):
            return "timeout", f"timed out talking to {where}"
        if isinstance(item, (ConnectionError, EOFError)):
            return "protocol", f"connection to {where} broken ({type(item).__name__})"
        if isinstance(item, OSError):
            return "connect", f"cannot reach {where} ({type(item).__name__})"
    return "protocol", f"request to {where} failed ({type(exc).__name__})"


def _classify_aiohttp(exc: BaseException, where: str) -> tuple[str, str] | None:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, aiohttp.ClientError):
        return None
    name = type(exc).__name__
    # Order matters: several of these subclass each other (and asyncio.TimeoutError).
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp >= 3.10
    if connect_timeout is not None and isinstance(exc, connect_timeout):
        return "connect", f"connecting to {where} timed out"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "timeout", f"{where} went idle too long ({name})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(getattr(exc, "os_error", None), ConnectionRefusedError)
        return "connect", (f"connection refused by {where}" if refused else f"cannot connect to {where} ({name})")
    if isinstance(exc, aiohttp.InvalidURL):
        return "connect", f"invalid URL for {where}"
    if isinstance(
        exc,
        (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
            aiohttp.ClientResponseError,
            aiohttp.ClientConnectionError,
        ),
    ):
        return "protocol", f"connection to {where} dropped or broken ({name})"
    return "protocol", f"request to {where} failed ({name})"


def _classify_httpx(exc: BaseException, where: str) -> tuple[str, str] | None:
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect", f"connecting to {where} timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"{where} went idle too long ({name})"
    if isinstance(exc, (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        text = str(exc).lower()
        if "refused" in text or "errno 111" in text:
            return "connect", f"connection refused by {where}"
        return "connect", f"cannot connect to {where} ({name})"
    if isinstance(exc, httpx.DecodingError):
        return "parse", f"response from {where} could not be decoded ({name})"
    if isinstance(
        exc,
        (
            httpx.RemoteProtocolError,
            httpx.LocalProtocolError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.CloseError,
            httpx.TooManyRedirects,
            httpx.StreamError,
            httpx.TransportError,
        ),
    ):
        return "protocol", f"connection to {where} dropped or broken ({name})"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    item: BaseException | None = exc
    while item is not None and item not in seen and len(seen) < 8:
        seen.append(item)
        item = item.__cause__ or item.__context__
    return seen


def _host(url: str) -> str:
    """``host:port`` only: never the path or query (which may hold a key)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "the server"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "the server"


def status_kind(status: int) -> str:
    """``http_<status>``."""
    return f"http_{status}"


def error_message(body: bytes | Any) -> str:
    """A short, one-line description from an API error body (OpenAI/Anthropic shapes)."""
    import json

    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return one_line(err["message"])
        if isinstance(err, str):
            return one_line(err)
        if isinstance(data.get("message"), str):
            return one_line(data["message"])
        if isinstance(data.get("detail"), str):
            return one_line(data["detail"])
    return one_line(text)
