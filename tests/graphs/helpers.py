"""Small LangGraph graphs written into a temporary folder beside their pipeline file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from reliability_cli.runner import RunOptions, run_eval
from tests.helpers import journal_text


def project(root: Path, module: str, pipeline: str, cases: list[dict[str, Any]], name: str = "g") -> Path:
    """Write ``{name}.py``, ``pipeline.yaml`` and ``cases.jsonl``; return the pipeline's path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(textwrap.dedent(module), encoding="utf-8")
    (root / "pipeline.yaml").write_text(textwrap.dedent(pipeline), encoding="utf-8")
    with open(root / "cases.jsonl", "w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case) + "\n")
    return root / "pipeline.yaml"


def run(path: Path, out: Path, **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run in-process; return results.json and the journal's lines."""
    outcome = run_eval(str(path), RunOptions(out=str(out), **options))
    assert outcome.results.to_dict() == json.loads((out / "results.json").read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in journal_text(out / "attempts.jsonl").splitlines()]
    return outcome.results.to_dict(), lines


def attempts(lines: list[dict[str, Any]], phase: str = "chained") -> list[dict[str, Any]]:
    return [r for r in lines if "step" in r and "unit_done" not in r and r.get("phase") == phase]


def units(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["unit_done"]["case"]: r["unit_done"] for r in lines if "unit_done" in r}


def step(results: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in results["steps"] if s["id"] == step_id)


#: A module-level counter every node bumps: tests read it to count node executions.
COUNTING = """
from collections import Counter
from typing import Annotated, TypedDict
import operator
from langgraph.graph import StateGraph, START, END

CALLS = Counter()

def bump(name, config):
    c = config["configurable"]
    CALLS[(c["case"], name)] += 1
    return c
"""
