"""A graph run killed with SIGKILL and resumed gives the results of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

from tests.helpers import ROOT, journal_text, run_relcheck
from tests.runner.helpers import spawn, wait_for

PIPELINE = ROOT / "evalsets" / "langgraph-agent" / "pipeline.yaml"
ARGS = ("--limit", "120", "--retries", "1", "--concurrency", "4", "-q", "--no-progress")


def _comparable(path: Path) -> dict:
    """results.json without what differs between equal runs: times, paths, measured latencies."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("id", "dir", "started_at", "finished_at", "duration_s", "concurrency"):
        data["run"].pop(key, None)
    for s in data["steps"]:
        s.pop("latency_ms")
    return data


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    ref = run_relcheck("eval", PIPELINE, "--out", tmp_path / "ref", *ARGS, cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    journal = run / "attempts.jsonl"
    kills = 0
    for i, moment in enumerate((10, 50, 90)):
        proc = spawn("eval", PIPELINE, *(("--resume", run) if i else ("--out", run)), *ARGS, cwd=tmp_path)
        wait_for(journal, moment, proc, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
        time.sleep(0.01)
    assert kills == 3
    final = run_relcheck("eval", PIPELINE, "--resume", run, *ARGS, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert _comparable(run / "results.json") == _comparable(tmp_path / "ref" / "results.json")
    done = Counter()
    for line in journal_text(journal).splitlines():
        rec = json.loads(line)
        if "unit_done" in rec:
            done[rec["unit_done"]["case"]] += 1
    assert len(done) == 120 and set(done.values()) == {1}
