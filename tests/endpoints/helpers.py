"""Loopback servers and pipeline helpers for the HTTP endpoint tests (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import journal_text

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextmanager
def raw_server(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A raw TCP server on 127.0.0.1 in a background loop; yields ``http://127.0.0.1:PORT``
    (``https://`` with a server-side ``tls`` context)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    tasks: set[asyncio.Task[Any]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)
            writer.close()

    async def start() -> asyncio.AbstractServer:
        return await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=tls)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:

        async def stop() -> None:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """Read one HTTP/1.1 request: (request line, lower-case headers, body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


def http_response(status: int, body: Any, headers: dict[str, str] | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
    ).encode() + data


Request = tuple[str, dict[str, str], bytes]  # request line, lower-case headers, body


def answering(answer: Callable[[Request], bytes]) -> Handler:
    """A handler answering each request of a kept-alive connection with ``answer(request)``,
    the response's bytes (see :func:`http_response`)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            writer.write(answer(request))
            await writer.drain()

    return handler


def always(
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    seen: list[Request] | None = None,
) -> Handler:
    """A handler answering every request on a kept-alive connection with the same response;
    each request read is appended to ``seen``."""

    def answer(request: Request) -> bytes:
        if seen is not None:
            seen.append(request)
        return http_response(status, body, headers)

    return answering(answer)


def completion(text: str, tokens: tuple[int, int] = (3, 2)) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]},
    }


def free_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_pipeline(directory: Path, pipeline: dict[str, Any], cases: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "evalset": "cases.jsonl", **pipeline}, sort_keys=False))
    return path


def one_step(
    base_url: str,
    *,
    timeout_s: float = 5,
    attempts: int = 1,
    checks: list[Any] | None = None,
    extra: dict[str, Any] | None = None,
    prompt: str = "{{ vars.q }}\nREPLY: {{ expect.answer }}",
    name: str = "t",
) -> dict[str, Any]:
    """A one-step pipeline on an ``openai`` endpoint named ``llm``."""
    endpoint = {"type": "openai", "base_url": base_url, "model": "gpt-test", "timeout_s": timeout_s, **(extra or {})}
    return {
        "name": name,
        "endpoints": {"llm": endpoint},
        "steps": [
            {
                "id": "answer",
                "endpoint": "llm",
                "prompt": prompt,
                "checks": checks if checks is not None else [{"type": "equals", "value": "{{ expect.answer }}"}],
                "retry": {"max_attempts": attempts, "backoff": {"initial_s": 0, "max_s": 0}},
            }
        ],
    }


def cases(n: int, prefix: str = "c") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "vars": {"q": f"question {i}"}, "expect": {"answer": f"a{i}"}} for i in range(n)]


def run(pipeline: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Run ``relcheck eval`` in-process; returns results.json."""
    from reliability_cli.runner import RunOptions, run_eval

    outcome = run_eval(str(pipeline), RunOptions(out=str(out), **options))
    return outcome.results.to_dict()


def attempts(out: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in journal_text(out / "attempts.jsonl").splitlines() if x.strip()]
    return [x for x in lines if "attempt" in x and "unit_done" not in x]


def step(results: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in results["steps"] if s.get("id", s.get("step")) == step_id)


class Counter:
    """A local OpenAI-compatible server's handler that answers ``REPLY: x`` with ``x`` (``ECHO-KEY``:
    the authorization header) and counts the requests it was sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def handler(self) -> Handler:
        def answer(request: Request) -> bytes:
            _, headers, raw = request
            body = json.loads(raw)
            with self.lock:
                self.requests.append(body)
            text = body["messages"][-1]["content"]
            reply = text.split("REPLY: ")[-1]
            if "ECHO-KEY" in text:
                reply = headers.get("authorization", "")
            return http_response(200, completion(reply))

        return answering(answer)

    def take(self) -> int:
        with self.lock:
            n = len(self.requests)
            self.requests.clear()
        return n
