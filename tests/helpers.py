"""Factories shared by the whole suite (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIX = ROOT / "evalsets" / "six-step-agent" / "pipeline.yaml"


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
