from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIX = ROOT / "evalsets" / "six-step-agent" / "pipeline.yaml"


@pytest.fixture
def cli():
    """Run relcheck in-process with typer's CliRunner; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from reliability_cli.cli import app

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def run_relcheck(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run relcheck as a user does: a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "reliability_cli", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def strip_volatile(results: dict) -> dict:
    """results.json without timestamps, durations and paths."""
    data = json.loads(json.dumps(results))
    for key in ("id", "dir", "started_at", "finished_at", "duration_s", "concurrency"):
        data["run"].pop(key, None)
    return data
