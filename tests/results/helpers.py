"""Build results documents quickly: synthetic unit tables, and small mock pipelines run in-process."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def doc_from_fail_idx(step_ids: Sequence[str], fail_idx: Sequence[int], trials: int = 1,
                      case_prefix: str = "c") -> dict[str, Any]:
    """A minimal results document; ``fail_idx[u]`` is the step index unit ``u`` failed at (len = passed).

    Units are ordered case by case, ``trials`` consecutive entries per case.
    """
    n = len(step_ids)
    units = []
    for u, idx in enumerate(fail_idx):
        case, trial = f"{case_prefix}{u // trials:05d}", u % trials + 1
        passed = int(idx) >= n
        units.append({"case": case, "trial": trial, "passed": passed,
                      "failed_step": None if passed else step_ids[int(idx)],
                      "outcome": "pass" if passed else "fail", "error_kind": None, "attempts": 1})
    total = len(units)
    passed = sum(u["passed"] for u in units)
    return {"schema": "relcheck.results/v1",
            "run": {"pipeline": "synthetic", "trials": trials, "cases": total // trials, "confidence": 0.95},
            "steps": [{"id": s} for s in step_ids],
            "end_to_end": {"passed": passed, "total": total, "rate": passed / total if total else None},
            "what_if": [], "gates": [], "units": units, "verdict": "pass", "exit_code": 0}


def simulate_fail_idx(rates: Sequence[float], units: int, rng: np.random.Generator) -> np.ndarray:
    """Each unit runs the chain; each step passes with its rate; the index of the first failure."""
    ok = rng.random((units, len(rates))) < np.asarray(rates)
    failed = ~ok
    return np.where(failed.any(axis=1), failed.argmax(axis=1), len(rates))


def write_pipeline(tmp: Path, steps: Sequence[tuple[str, float, str]], cases: int, *, gates: str = "",
                   seed: int = 3, name: str = "p") -> Path:
    """A mock pipeline: one endpoint per step (``(id, fail_rate, failure)``) and ``cases`` cases."""
    tmp.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", f"name: {name}", "evalset: cases.jsonl", f"seed: {seed}", "endpoints:"]
    for sid, rate, failure in steps:
        lines += [f"  ep_{sid}:", "    type: mock", f"    fail_rate: {rate}", f"    failure: {failure}",
                  '    reply: "{{ expect[step.id] }}"']
    lines += ["defaults:", "  retry: {max_attempts: 1, backoff: {initial_s: 0}}", "steps:"]
    for sid, _, _ in steps:
        lines += [f"  - id: {sid}", f"    endpoint: ep_{sid}", f'    prompt: "do {sid} for {{{{ vars.x }}}}"',
                  "    checks:", f'      - {{type: equals, value: "{{{{ expect.{sid} }}}}"}}']
    if gates:
        lines += ["gates:", *("  " + g for g in gates.strip().splitlines())]
    (tmp / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    with open(tmp / "cases.jsonl", "w") as fh:
        for i in range(cases):
            fh.write(json.dumps({"id": f"case-{i:05d}", "vars": {"x": i},
                                 "expect": {sid: f"{sid}-{i}" for sid, _, _ in steps}}) + "\n")
    return tmp / "pipeline.yaml"


def run(pipeline: Path, out: Path, **options: Any) -> Any:
    from reliability_cli.runner import RunOptions, run_eval

    return run_eval(str(pipeline), RunOptions(out=str(out), **options))
