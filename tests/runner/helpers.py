"""Factories for the runner tests: a three-step mock project."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

PIPELINE = """\
version: 1
name: slow-chain
evalset: cases.jsonl
seed: 3
endpoints:
  sim:
    type: mock
    fail_rate: {fail_rate}
    failure: {failure}
    latency_ms: {latency_ms}
    reply: "{{{{ expect[step.id] }}}}"
defaults:
  retry: {{max_attempts: 2, on: [error, fail], backoff: {{initial_s: 0}}}}
steps:
  - id: first
    endpoint: sim
    prompt: "one {{{{ vars.q }}}}"
    checks: [{{type: equals, value: "{{{{ expect.first }}}}"}}]
  - id: second
    endpoint: sim
    prompt: "two {{{{ steps.first.output }}}}"
    checks: [{{type: equals, value: "{{{{ expect.second }}}}"}}]
  - id: third
    endpoint: sim
    prompt: "three {{{{ steps.second.output }}}}"
    checks: [{{type: equals, value: "{{{{ expect.third }}}}"}}]
gates:
  end_to_end: {{min: 0.5}}
"""


def make_project(
    root: Path, cases: int = 200, latency_ms: int = 5, fail_rate: float = 0.15, failure: str = "wrong"
) -> Path:
    """A three-step mock pipeline with latency and an eval set of ``cases`` cases."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text(
        PIPELINE.format(latency_ms=latency_ms, fail_rate=fail_rate, failure=failure), encoding="utf-8"
    )
    with open(root / "cases.jsonl", "w", encoding="utf-8") as fh:
        for i in range(cases):
            fh.write(
                json.dumps(
                    {
                        "id": f"case-{i:04d}",
                        "vars": {"q": str(i)},
                        "expect": {"first": f"a{i}", "second": f"b{i}", "third": f"c{i}"},
                    }
                )
                + "\n"
            )
    return root / "pipeline.yaml"


def comparable(results: dict) -> dict:
    """results.json without what legitimately differs between equal runs."""
    data = json.loads(json.dumps(results))
    for key in (
        "id",
        "dir",
        "started_at",
        "finished_at",
        "duration_s",
        "concurrency",
        "concurrency_cap",
        "merged_from",
        "source",
    ):
        data["run"].pop(key, None)
    return data


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def spawn(*args: object, cwd: Path) -> subprocess.Popen[str]:
    """``relcheck ARGS…`` in a child process (to be killed), its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "reliability_cli", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def units_done(journal: Path) -> int:
    """How many ``unit_done`` lines a journal being written holds so far."""
    try:
        return journal.read_bytes().count(b'"unit_done"')
    except FileNotFoundError:
        return 0


def wait_for(journal: Path, units: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    """Until the journal holds ``units`` finished units or the process ended (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while units_done(journal) < units and proc.poll() is None:
        assert time.monotonic() < deadline, f"run did not reach {units} units"
        time.sleep(0.005)
