from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from .helpers import SERVERS  # noqa: E402  (after the skip: nothing here runs without mcp)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The test server on streamable HTTP at 127.0.0.1 (a real subprocess): (url, pidfile)."""
    pidfile = tmp_path / "http-server.pids"
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS), "--http"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PIDFILE": str(pidfile)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp", pidfile
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
