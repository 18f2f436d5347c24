"""Build results documents quickly: synthetic unit tables, and small mock pipelines run in-process."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reliability_cli.results import analysis
from reliability_cli.results.schema import Latency, Results, RunFlags, StepRow, Tokens, UnitRecord


def doc_from_fail_idx(
    step_ids: Sequence[str], fail_idx: Sequence[int], trials: int = 1, case_prefix: str = "c"
) -> Results:
    """A minimal results document; ``fail_idx[u]`` is the step index unit ``u`` failed at (len = passed).

    Units are ordered case by case, ``trials`` consecutive entries per case.
    """
    n = len(step_ids)
    units = []
    for u, idx in enumerate(fail_idx):
        case, trial = f"{case_prefix}{u // trials:05d}", u % trials + 1
        passed = int(idx) >= n
        units.append(
            UnitRecord(
                case,
                trial,
                passed,
                None if passed else step_ids[int(idx)],
                "pass" if passed else "fail",
                None,
                1,
                u // trials,
            )
        )
    steps = []
    for k, sid in enumerate(step_ids):
        reached = sum(1 for i in fail_idx if int(i) >= k)
        passed = sum(1 for i in fail_idx if int(i) > k)
        steps.append(
            StepRow(
                id=sid,
                endpoint="sim",
                max_attempts=1,
                reached=reached,
                passed=passed,
                failed=reached - passed,
                errors=0,
                rate=passed / reached if reached else None,
                ci=None,
                first_try_rate=passed / reached if reached else None,
                recovery_rate=None,
                recovery_rate_independent=None,
                retry_recovered=0,
                retried=0,
                attempts=reached,
                attempt_outcomes={"pass": passed, "fail": reached - passed, "error": 0},
                error_kinds={},
                throttled=0,
                latency_ms=Latency(p50=None, p95=None, max=None),
                tokens=Tokens(input=0, output=0),
                cost_usd=None,
                failures=(),
                failures_omitted=0,
                first_try_passed=passed,
            )
        )
    run = {
        "id": "synthetic",
        "pipeline": "synthetic",
        "pipeline_hash": "0" * 64,
        "evalset_hash": "0" * 64,
        "flags": RunFlags(trials=trials),
        "dir": None,
        "started_at": "",
        "finished_at": "",
        "duration_s": 0.0,
        "relcheck_version": "test",
        "seed": 0,
        "trials": trials,
        "concurrency": 1,
        "isolate": False,
        "retries": None,
        "shard": None,
        "evalsets": (),
        "cases": len(units) // trials,
        "units_planned": len(units),
        "stop_reason": None,
        "interrupted": False,
    }
    return analysis.assemble(run, steps, units, trials=trials, confidence=0.95, isolate=False)


def simulate_fail_idx(rates: Sequence[float], units: int, rng: np.random.Generator) -> np.ndarray:
    """Each unit runs the chain; each step passes with its rate; the index of the first failure."""
    ok = rng.random((units, len(rates))) < np.asarray(rates)
    failed = ~ok
    return np.where(failed.any(axis=1), failed.argmax(axis=1), len(rates))


def write_pipeline(
    tmp: Path, steps: Sequence[tuple[str, float, str]], cases: int, *, gates: str = "", seed: int = 3, name: str = "p"
) -> Path:
    """A mock pipeline: one endpoint per step (``(id, fail_rate, failure)``) and ``cases`` cases."""
    tmp.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", f"name: {name}", "evalset: cases.jsonl", f"seed: {seed}", "endpoints:"]
    for sid, rate, failure in steps:
        lines += [
            f"  ep_{sid}:",
            "    type: mock",
            f"    fail_rate: {rate}",
            f"    failure: {failure}",
            '    reply: "{{ expect[step.id] }}"',
        ]
    lines += ["defaults:", "  retry: {max_attempts: 1, backoff: {initial_s: 0}}", "steps:"]
    for sid, _, _ in steps:
        lines += [
            f"  - id: {sid}",
            f"    endpoint: ep_{sid}",
            f'    prompt: "do {sid} for {{{{ vars.x }}}}"',
            "    checks:",
            f'      - {{type: equals, value: "{{{{ expect.{sid} }}}}"}}',
        ]
    if gates:
        lines += ["gates:", *("  " + g for g in gates.strip().splitlines())]
    (tmp / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    with open(tmp / "cases.jsonl", "w") as fh:
        for i in range(cases):
            fh.write(
                json.dumps(
                    {"id": f"case-{i:05d}", "vars": {"x": i}, "expect": {sid: f"{sid}-{i}" for sid, _, _ in steps}}
                )
                + "\n"
            )
    return tmp / "pipeline.yaml"


def run(pipeline: Path, out: Path, **options: Any) -> Any:
    from reliability_cli.runner import RunOptions, run_eval

    return run_eval(str(pipeline), RunOptions(out=str(out), **options))
