"""Factories shared by the whole suite (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIX = ROOT / "evalsets" / "six-step-agent" / "pipeline.yaml"


def load_bench(name: str) -> Any:
    """The module ``bench/<name>.py``, imported once under ``name`` (the benchmark's scripts are
    not a package; their dataclasses and their imports of each other look the name up)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_relcheck(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run relcheck as a user does: a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reliability_cli", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def journal_text(path: Path) -> str:
    """The text of a run file (``RUN/attempts.jsonl``, ``RUN/requests.jsonl``) in whichever
    form it is stored: a finished run's are gzipped once they are large (``journal.compress_run``)."""
    from reliability_cli.journal import open_stored

    with open_stored(Path(path)) as fh:
        return fh.read().decode("utf-8")


def strip_volatile(results: dict) -> dict:
    """results.json without timestamps, durations, paths and the endpoints' measured rates."""
    data = json.loads(json.dumps(results))
    for key in ("id", "dir", "started_at", "finished_at", "duration_s", "concurrency", "concurrency_cap"):
        data["run"].pop(key, None)
    data.pop("endpoints", None)  # rates and windows measured while running, like duration_s
    return data


STEP_DEFAULTS = {
    "endpoint": "sim",
    "max_attempts": 1,
    "reached": 0,
    "passed": 0,
    "failed": 0,
    "errors": 0,
    "rate": None,
    "ci": None,
    "first_try_rate": None,
    "recovery_rate": None,
    "recovery_rate_independent": None,
    "retry_recovered": 0,
    "retried": 0,
    "attempts": 0,
    "attempt_outcomes": {"pass": 0, "fail": 0, "error": 0},
    "error_kinds": {},
    "throttled": 0,
    "latency_ms": {"p50": None, "p95": None, "max": None},
    "tokens": {"input": 0, "output": 0},
    "cost_usd": None,
    "failures": [],
    "failures_omitted": 0,
}
RUN_DEFAULTS = {
    "id": "synthetic",
    "pipeline": "synthetic",
    "pipeline_hash": "0" * 64,
    "evalset_hash": "0" * 64,
    "flags": {},
    "dir": None,
    "started_at": "",
    "finished_at": "",
    "duration_s": 0.0,
    "relcheck_version": "test",
    "seed": 0,
    "trials": 1,
    "concurrency": 1,
    "isolate": False,
    "retries": None,
    "shard": None,
    "evalsets": [],
    "cases": 0,
    "units_planned": 0,
    "stop_reason": None,
    "interrupted": False,
    "units": 0,
    "requests": 0,
    "cost_usd": None,
    "confidence": 0.95,
}
E2E_DEFAULTS = {"passed": 0, "total": 0, "rate": None, "ci": None, "cases": 0, "infra_errors": 0, "error_rate": None}


GATE_DEFAULTS = {"threshold": 0.0, "observed": None, "bound": None}


def results_from(
    steps: list[dict],
    end_to_end: dict | None = None,
    run: dict | None = None,
    units: list[dict] | None = None,
    **top: Any,
):
    """A typed ``Results`` from partial rows: what a test states, defaults for the rest
    (``top``: other top-level keys as given, e.g. ``what_if``, ``verdict``; ``gates`` rows
    get defaults too)."""
    from reliability_cli.results.schema import from_dict

    latency = {"p50": None, "p95": None, "max": None}
    rows = [{**STEP_DEFAULTS, **s, "latency_ms": {**latency, **s.get("latency_ms", {})}} for s in steps]
    return from_dict(
        {
            "schema": "relcheck.results/v1",
            "run": {**RUN_DEFAULTS, **(run or {})},
            "steps": rows,
            "end_to_end": {**E2E_DEFAULTS, **(end_to_end or {})},
            "what_if": [],
            "units": units or [],
            "verdict": "pass",
            "exit_code": 0,
            **top,
            "gates": [{**GATE_DEFAULTS, **g} for g in top.get("gates", [])],
        }
    )


def assert_round_trips(path: Path) -> bool:
    """``write(load(x)) == x`` for a results document (other JSON files are skipped).

    Returns whether ``path`` was a results document.
    """
    import io

    from reliability_cli.errors import ResultsError
    from reliability_cli.results import schema

    if not path.is_file():  # a hostile-input test's FIFO or symlink to /dev/zero: never read
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError):  # (a hostile-input test's 100,000-level file)
        return False
    if not isinstance(data, dict) or data.get("schema") != schema.SCHEMA:
        return False
    try:
        loaded = schema.load(path)
    except ResultsError:
        return False  # a deliberately broken file of a bad-input test
    buffer = io.StringIO()
    schema.dump(loaded, buffer)
    assert json.loads(buffer.getvalue()) == data, f"{path} does not round-trip"
    return True
