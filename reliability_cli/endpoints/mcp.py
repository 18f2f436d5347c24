"""The ``mcp`` endpoint: steps that call the tools of an MCP server (through the official SDK).

One session per endpoint, opened on first use and shared by every unit in flight (the
engine's ``max_concurrency`` bounds them). The SDK's ``Client`` is an anyio context manager
that must be entered and left in one task, so each session lives in an *owner task* that
enters it, signals ready and waits to be told to stop; calls from any worker go through the
session meanwhile. A dropped session (the server crashed) fails the calls in flight with
``protocol`` and is reopened by the next call.

A step's attempt, rendered: ``tool`` (text) and ``arguments`` (values; an ``arguments`` that
is exactly one template expression is its native value). What comes back:

=================================================  ============================================
answer                                             attempt
=================================================  ============================================
a result                                           text parts joined by newlines; its
                                                   ``structuredContent`` is the step's JSON value
``isError: true``                                  ``tool_error`` (``tool_unknown`` when the
                                                   server does not list the tool, ``tool_args``
                                                   when the arguments fail its ``inputSchema``)
JSON-RPC ``-32602`` (invalid params)               ``tool_args``, or ``tool_unknown`` for a tool
                                                   the server does not list
no answer within the step's ``timeout_s``          ``timeout``
the session dropped (server exited, stream cut)    ``protocol``
the server cannot be started or reached            ``connect`` (``timeout`` for a handshake
                                                   that never completes)
=================================================  ============================================

The ``mcp`` package is imported only here, and only when a session is opened: a replayed
run needs neither the SDK nor the server, and neither does a run whose every call is answered
from the response cache (:mod:`.cache`; the listing for ``tools_from`` is always live).
Server stderr goes to ``mcp-<endpoint>.log`` in the run directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..templating import RenderError, render_value
from ..textfmt import one_line
from . import cassette as cassettes
from .base import AttemptError, Request, Response
from .mcp_session import Session
from .mcp_tools import (
    INSTALL_HINT,
    anthropic_tools,
    arguments_problem,
    leaf,
    openai_tools,
    require_sdk,
    text_of,
    tool_hint,
)

__all__ = [
    "INSTALL_HINT",
    "McpEndpoint",
    "anthropic_tools",
    "arguments_problem",
    "openai_tools",
    "require_sdk",
    "tool_hint",
]

TOOL_KINDS = frozenset({"tool_error", "tool_args", "tool_unknown"})
LIST_PATH = "mcp:tools/list"
CALL_PATH = "mcp:tools/call"
_BACKSTOP_S = 1.0  # our own deadline, past the SDK's, should a call ignore its timeout
# JSON-RPC codes (mcp_types; spelled out so that replay never imports the SDK)
_INVALID_PARAMS, _METHOD_NOT_FOUND = -32602, -32601
_CONNECTION_CLOSED, _REQUEST_TIMEOUT = -32000, -32001


class McpEndpoint:
    """Calls MCP tools; see the module docstring for what each answer becomes."""

    def __init__(self, name: str, config: Any, options: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config
        pipeline = options.get("pipeline")
        self._steps = {s.id: s for s in pipeline.steps} if pipeline is not None else {}
        self._base_dir = pipeline.path.parent if pipeline is not None else Path.cwd()
        environ = options.get("environ")
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        run_dir = options.get("run_dir")
        self._log_path = Path(run_dir) / f"mcp-{name}.log" if run_dir else None
        self._log: Any = None
        replay, record = options.get("replay"), options.get("record")
        self._replayer = cassettes.open_replayer(replay) if replay else None
        self._recorder = cassettes.open_recorder(record, pipeline, self._environ) if record and not replay else None
        if self._recorder is not None:
            self._recorder.guard(self._secrets())
        self._cache: Any = None
        cache = options.get("cache") if not (replay or record) else None
        if cache:
            from . import cache as caches

            self._cache = caches.open_cache(cache, options.get("secrets") or (), bool(options.get("cache_only")))
            self._cache.add_secrets(list(self._secrets().values()))
        self._session: Session | None = None
        self._http: Any = None
        self._lock = asyncio.Lock()
        self._tools: list[dict[str, Any]] | None = None
        self._listed_recorded = False
        self._closed = False
        self._redact = tuple(getattr(config, "redact", ()) or ())

    # ---------------------------------------------------------------- the session

    def _secrets(self) -> dict[str, str]:
        """Values of ``env`` and ``headers`` (and a header's token): never in a cassette."""
        found: dict[str, str] = {}
        for key, value in {**self.config.env, **self.config.headers}.items():
            found[f"{self.name}.{key}"] = value
            if " " in value.strip():
                found[f"{self.name}.{key} (token)"] = value.strip().rsplit(" ", 1)[-1]
        return found

    def _connect(self) -> Any:
        """A factory of the SDK ``Client`` for this endpoint's transport."""
        from mcp import Client

        cfg = self.config
        if cfg.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            if self._http is None:  # one connection pool for the endpoint, whatever the sessions
                timeout = cfg.timeout_s or 30.0
                self._http = httpx2.AsyncClient(headers=dict(cfg.headers), timeout=httpx2.Timeout(timeout, read=300.0))
            http = self._http

            def http_client() -> Any:
                return Client(streamable_http_client(cfg.url, http_client=http), cache=None)

            return http_client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command = list(cfg.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable  # the interpreter relcheck runs on, where the SDK is installed
        env = dict(cfg.env)
        if "PATH" in self._environ and "PATH" not in env:
            env["PATH"] = self._environ["PATH"]
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(self._base_dir))
        if self._log is None:
            if self._log_path is not None:
                self._log = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in aclose
            else:
                self._log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

        def stdio() -> Any:
            return Client(stdio_client(params, errlog=self._log), cache=None)

        return stdio

    def _where(self) -> str:
        cfg = self.config
        return f"url {cfg.url}" if cfg.url is not None else f"command {' '.join(cfg.command)}"

    def _stderr_tail(self) -> str:
        log = self._log
        if log is None:
            return ""
        try:
            log.flush()
            if self._log_path is not None:
                text = self._log_path.read_text(encoding="utf-8", errors="replace")
            else:
                log.seek(0)
                text = log.read()
                log.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return f"; its stderr ends: {one_line(lines[-1])[:200]}" if lines else ""

    async def _open(self, timeout_s: float) -> Session:
        """The live session, opened (or reopened after a drop) on demand."""
        async with self._lock:
            session = self._session
            if session is not None and not session.dead:
                return session
            if session is not None:
                await session.close()
                self._session = None
            session = Session()
            self._session = session  # held while it opens, so that aclose() can stop it
            started = time.perf_counter()
            try:
                await session.open(self._connect(), timeout_s)
            except asyncio.TimeoutError:
                self._session = None
                raise AttemptError(
                    "timeout",
                    f"endpoint {self.name}: the MCP server ({self._where()}) did not "
                    f"complete the handshake within {timeout_s:g} s{self._stderr_tail()}",
                    latency_ms=(time.perf_counter() - started) * 1000,
                ) from None
            if session.client is None:
                self._session = None
                raise AttemptError(
                    "connect",
                    f"endpoint {self.name}: cannot start or reach the MCP server "
                    f"({self._where()}): {self._describe(session.error)}{self._stderr_tail()}",
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            if self._tools is None:
                self._tools = session.tools
                self._record_listing()
            return session

    @staticmethod
    def _describe(exc: BaseException | None) -> str:
        if exc is None:
            return "the session ended during the handshake"
        inner = leaf(exc)
        code = getattr(inner, "code", None)
        if code == _CONNECTION_CLOSED:
            return "the server closed the connection during the handshake"
        text = str(inner) or type(inner).__name__
        return one_line(f"{type(inner).__name__}: {text}")

    # ---------------------------------------------------------------- listing

    async def list_tools(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """The server's tools (``name``, ``description``, ``inputSchema`` …), listed once per run.

        Raises:
            AttemptError: the server cannot be started or reached (or, replaying, the
                cassette has no listing: ``replay_miss``).
        """
        if self._tools is not None:
            return self._tools
        if self._replayer is not None:
            line = self._replayer.take(self.name, LIST_PATH, {}, "", 0, "", 0, keep=True)
            if line is None:
                raise AttemptError(
                    "replay_miss",
                    f"no tool listing of endpoint '{self.name}' in {os.path.basename(self._replayer.path)}",
                    latency_ms=0.0,
                )
            self._tools = list(json.loads(line.get("response") or "[]"))
            return self._tools
        session = await self._open(timeout_s or self.config.timeout_s or 30.0)
        return self._tools if self._tools is not None else session.tools

    def _record_listing(self) -> None:
        if self._recorder is None or self._listed_recorded:
            return
        self._listed_recorded = True
        self._recorder.record_line(
            {
                "endpoint": self.name,
                "method": "tools/list",
                "path": LIST_PATH,
                "body": {},
                "case": "",
                "trial": 0,
                "step": "",
                "attempt": 0,
                "phase": "setup",
                "status": None,
                "response": json.dumps(self._tools, ensure_ascii=False),
                "latency_ms": 0.0,
                "error": None,
                "reason": None,
            }
        )

    async def offered_tools(self, api: str) -> list[dict[str, Any]]:
        """The tools in ``api``'s format (``openai`` or ``anthropic``) for ``tools_from``."""
        tools = await self.list_tools()
        return anthropic_tools(tools) if api == "anthropic" else openai_tools(tools)

    # ---------------------------------------------------------------- one call

    def render(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The attempt's tool name and arguments."""
        step = self._steps.get(request.key.step)
        if step is None or step.tool is None:
            raise AttemptError("template", f"endpoint {self.name}: step {request.key.step} names no tool")
        try:
            tool = step.tool.render(request.context)
            arguments = render_value(step.arguments, request.context) if step.arguments is not None else {}
        except RenderError as exc:
            raise AttemptError("template", f"endpoint {self.name}: {exc}") from None
        if not isinstance(tool, str) or not tool.strip():
            raise AttemptError("tool_unknown", f"endpoint {self.name}: the tool name rendered empty")
        if not isinstance(arguments, dict):
            raise AttemptError(
                "tool_args",
                f"endpoint {self.name}: tool {tool}: arguments must be an object, got {type(arguments).__name__}",
            )
        return tool.strip(), arguments

    async def call(self, request: Request) -> Response:
        tool, arguments = self.render(request)
        started = time.perf_counter()
        key = request.key
        if self._replayer is not None:
            if self._tools is None:  # the recorded listing classifies answers as it did live
                try:
                    await self.list_tools()
                except AttemptError:
                    pass
            body = cassettes.redact({"name": tool, "arguments": arguments}, self._redact)
            line = self._replayer.take(self.name, CALL_PATH, body, key.case, key.trial, key.step, key.attempt)
            if line is None:
                raise AttemptError(
                    "replay_miss",
                    f"no recording in {os.path.basename(self._replayer.path)} for "
                    f"endpoint '{self.name}' tool {tool} (case {key.case}, trial {key.trial}, "
                    f"step {key.step}, attempt {key.attempt}) with these arguments",
                    latency_ms=0.0,
                )
            latency = float(line.get("latency_ms") or 0.0)
            if line.get("error"):
                raise AttemptError(str(line["error"]), str(line.get("reason") or line["error"]), latency_ms=latency)
            return self._read(tool, arguments, json.loads(line.get("response") or "{}"), latency)
        cache_key = self._cache_key(request, tool, arguments)
        if cache_key is not None:
            hit = self._cache.get_result(cache_key)
            if hit is not None:
                response = self._read(tool, arguments, hit, 0.0)
                response.extra["cached"] = True
                return response
            if self._cache.only:
                raise AttemptError(
                    "cache_miss",
                    f"endpoint {self.name}: no cached result for tool {tool} (case {key.case}, "
                    f"trial {key.trial}, step {key.step}, attempt {key.attempt}) in {self._cache.path}; "
                    "--cache-only makes no call",
                    latency_ms=0.0,
                )
        try:
            result, latency = await self._call_live(request, tool, arguments, started)
        except AttemptError as exc:
            self._record(request, tool, arguments, None, exc)
            raise
        self._record(request, tool, arguments, result, None, latency)
        if cache_key is not None:
            self._cache.put_result(cache_key, self._host(), key.step, result, latency)
        return self._read(tool, arguments, result, latency)

    # ---------------------------------------------------------------- the response cache

    def _identity(self) -> dict[str, Any]:
        """What tells this server apart in a cache key: its URL (credentials masked) or its
        command, folder and ``env`` names — never a value of ``env`` or ``headers``."""
        cfg = self.config
        if cfg.url is not None:
            return {"url": cassettes.safe_url(cfg.url)}
        return {"command": list(cfg.command), "cwd": str(self._base_dir), "env": sorted(cfg.env)}

    def _host(self) -> str:
        if self.config.url is None:
            return "stdio"
        from urllib.parse import urlsplit

        try:
            return urlsplit(self.config.url).hostname or ""
        except ValueError:
            return ""

    def _cache_key(self, request: Request, tool: str, arguments: dict[str, Any]) -> str | None:
        if self._cache is None:
            return None
        try:
            return str(self._cache.tool_key(self._identity(), tool, arguments, request))
        except (TypeError, ValueError):  # arguments JSON cannot hold: called live, not cached
            return None

    async def _call_live(
        self, request: Request, tool: str, arguments: dict[str, Any], started: float
    ) -> tuple[dict[str, Any], float]:
        deadline = request.timeout_s
        session = await self._open(self.config.timeout_s or deadline)
        started = time.perf_counter()  # starting the server is not the call's latency, nor its deadline
        remaining = deadline

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            result = await asyncio.wait_for(
                session.client.call_tool(tool, arguments, read_timeout_seconds=remaining), remaining + _BACKSTOP_S
            )
        except asyncio.TimeoutError:
            raise AttemptError(
                "timeout", f"endpoint {self.name}: tool {tool}: no answer within {deadline:g} s", latency_ms=elapsed()
            ) from None
        except Exception as exc:  # the SDK raises MCPError, pydantic and anyio errors
            raise self._error(exc, tool, arguments, deadline, session, elapsed()) from None
        return result.model_dump(by_alias=True, mode="json", exclude_none=True), elapsed()

    def _error(
        self,
        exc: BaseException,
        tool: str,
        arguments: dict[str, Any],
        deadline: float,
        session: Session,
        latency: float,
    ) -> AttemptError:
        inner = leaf(exc)
        code = getattr(inner, "code", None)
        message = one_line(str(getattr(inner, "message", None) or inner) or type(inner).__name__)
        prefix = f"endpoint {self.name}: tool {tool}"
        if code == _REQUEST_TIMEOUT:
            return AttemptError("timeout", f"{prefix}: no answer within {deadline:g} s", latency_ms=latency)
        if code == _CONNECTION_CLOSED or type(inner).__name__ in (
            "ClosedResourceError",
            "BrokenResourceError",
            "EndOfStream",
        ):
            session.dead = True
            return AttemptError(
                "protocol", f"{prefix}: the MCP session dropped ({message}){self._stderr_tail()}", latency_ms=latency
            )
        if code == _INVALID_PARAMS:
            known = self._known(tool)
            if known is False or "unknown tool" in message.lower():
                return AttemptError(
                    "tool_unknown",
                    f"{prefix}: unknown tool ({message})" + (tool_hint(tool, self._names()) if known is False else ""),
                    latency_ms=latency,
                )
            return AttemptError("tool_args", f"{prefix}: invalid arguments: {message}", latency_ms=latency)
        if code == _METHOD_NOT_FOUND:
            return AttemptError(
                "protocol", f"{prefix}: the server does not serve tools/call ({message})", latency_ms=latency
            )
        if code is not None:
            return AttemptError("tool_error", f"{prefix}: JSON-RPC error {code}: {message}", latency_ms=latency)
        if type(inner).__name__ == "ValidationError" or isinstance(inner, RuntimeError):
            return AttemptError(
                "parse",
                f"{prefix}: the result does not follow the protocol or the tool's outputSchema: {message[:300]}",
                latency_ms=latency,
            )
        session.dead = True
        return AttemptError("protocol", f"{prefix}: {type(inner).__name__}: {message}", latency_ms=latency)

    def _names(self) -> list[str]:
        return [str(t.get("name")) for t in self._tools or ()]

    def _known(self, tool: str) -> bool | None:
        session = self._session
        tools = self._tools if self._tools is not None else (session.tools if session is not None else None)
        if tools is None:
            return None
        return any(t.get("name") == tool for t in tools)

    def _schema(self, tool: str) -> Mapping[str, Any] | None:
        for t in self._tools or ():
            if t.get("name") == tool:
                return t.get("inputSchema")  # type: ignore[no-any-return]
        return None

    def _read(self, tool: str, arguments: dict[str, Any], result: Mapping[str, Any], latency: float) -> Response:
        text = text_of(result)
        if result.get("isError"):
            prefix = f"endpoint {self.name}: tool {tool}"
            if self._known(tool) is False:
                raise AttemptError(
                    "tool_unknown",
                    f"{prefix}: unknown tool{tool_hint(tool, self._names())} ({one_line(text)[:200]})",
                    latency_ms=latency,
                )
            problem = arguments_problem(arguments, self._schema(tool))
            if problem is not None:
                raise AttemptError(
                    "tool_args", f"{prefix}: {problem} (the server: {one_line(text)[:200]})", latency_ms=latency
                )
            raise AttemptError(
                "tool_error", f"{prefix}: isError: {one_line(text)[:300] or '(no text)'}", latency_ms=latency
            )
        structured = result.get("structuredContent")
        return Response(text, output=structured, latency_ms=latency, extra={"json": structured})

    def _record(
        self,
        request: Request,
        tool: str,
        arguments: dict[str, Any],
        result: Mapping[str, Any] | None,
        error: AttemptError | None,
        latency: float = 0.0,
    ) -> None:
        if self._recorder is None:
            return
        key = request.key
        fields = self._redact
        line: dict[str, Any] = {
            "endpoint": self.name,
            "method": "tools/call",
            "path": CALL_PATH,
            "body": cassettes.redact({"name": tool, "arguments": arguments}, fields),
            "case": key.case,
            "trial": key.trial,
            "step": key.step,
            "attempt": key.attempt,
            "phase": request.phase,
            "status": None,
            "response": None
            if result is None
            else json.dumps(cassettes.redact(dict(result), fields), ensure_ascii=False),
            "latency_ms": round(error.latency_ms or 0.0, 3) if error is not None else round(latency, 3),
            "error": error.kind if error is not None else None,
            "reason": error.reason if error is not None else None,
        }
        self._recorder.record_line(line)

    # ---------------------------------------------------------------- the end

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._http is not None:
            await self._http.aclose()
        if self._log is not None:
            self._log.close()
        for held in (self._recorder, self._replayer):
            if held is not None:
                cassettes.release(held)
        if self._cache is not None:
            from . import cache as caches

            caches.release(self._cache)
            self._cache = None
