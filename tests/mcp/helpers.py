"""Factories for the MCP tests: the test servers' processes, pipelines and runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import journal_text

SERVERS = Path(__file__).resolve().parent / "servers.py"


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            state = next((ln for ln in fh if ln.startswith("State:")), "")
    except OSError:
        return False
    return "Z" not in state.split(":", 1)[1][:3]


def pids(pidfile: Path) -> list[int]:
    if not pidfile.exists():
        return []
    return [int(x) for x in pidfile.read_text().split()]


def wait_gone(pid_list: list[int], seconds: float = 20.0) -> list[int]:
    """The pids still alive after waiting up to ``seconds`` (bounded poll)."""
    deadline = time.monotonic() + seconds
    left = [p for p in pid_list if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def write_pipeline(
    tmp_path: Path, endpoints: dict[str, Any], steps: list[dict[str, Any]], cases: list[dict[str, Any]], **extra: Any
) -> tuple[Path, Path]:
    doc = {"version": 1, "name": "mcp-test", "endpoints": endpoints, "steps": steps, **extra}
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(doc, sort_keys=False))
    evalset = tmp_path / "cases.jsonl"
    evalset.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return pipeline, evalset


def stdio_endpoint(pidfile: Path, *args: str, timeout_s: float = 20.0) -> dict[str, Any]:
    return {
        "type": "mcp",
        "command": ["python", str(SERVERS), *args],
        "env": {"PIDFILE": str(pidfile)},
        "timeout_s": timeout_s,
    }


def run(pipeline: Path, evalset: Path, out: Path, **options: Any) -> dict[str, Any]:
    from reliability_cli.runner import RunOptions, run_eval

    run_eval(str(pipeline), RunOptions(evalsets=[str(evalset)], out=str(out), **options))
    return dict(json.loads((out / "results.json").read_text()))  # what a user's script reads


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(ln) for ln in journal_text(run_dir / "attempts.jsonl").splitlines()[1:]]
    return [ln for ln in lines if "unit_done" not in ln]


def step_row(results: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in results["steps"] if s["id"] == step_id)
