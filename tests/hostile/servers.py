"""Hostile HTTP servers on 127.0.0.1 and a memory-limited ``relcheck`` subprocess."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

from ..endpoints.helpers import Handler, read_request

ROOT = Path(__file__).resolve().parents[2]
#: Address space for a limited relcheck process: its imports need about 0.4 GiB; a 2 GiB
#: decoded body (the bomb below) cannot fit, so a missing cap fails the test, not the machine.
LIMIT_AS = 1 << 30


def gzip_bomb(mib: int) -> bytes:
    """A gzip body that decodes to ``mib`` MiB of zeros, built from one 1 MiB deflate segment
    repeated (a full flush makes segments independent), in about 1 KiB per MiB."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + segment * mib


def bomb_server(body: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()

    return handler


def endless_server(max_chunks: int = 40_000) -> Handler:
    """A chunked body that never ends (bounded at 2.5 GiB, or until the client hangs up)."""
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(max_chunks):
            writer.write(chunk)
            await writer.drain()

    return handler


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def limited_relcheck(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``relcheck ARGS`` in a subprocess whose address space is capped at :data:`LIMIT_AS`."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "reliability_cli", *map(str, args)],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit,
    )
