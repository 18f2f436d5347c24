"""results.json from the journal, one record at a time: the block size of the cost sums and
the failures cap never change another number, unfinished units and judge lines are never
counted, and failures keep eval-set order."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from reliability_cli.config import load_pipeline
from reliability_cli.results import analysis
from reliability_cli.runner import RunOptions, run_eval
from reliability_cli.runner.cases import select_cases
from reliability_cli.runner.run import apply_overrides
from tests.helpers import SIX, journal_text

CASES = 150


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The six-step set, 150 cases × 2 trials, one retry, isolated pass: every table is busy."""
    out = tmp_path_factory.mktemp("build") / "run"
    run_eval(str(SIX), RunOptions(out=str(out), trials=2, retries=1, isolate=True, limit=CASES, concurrency=16))
    return out


def rebuild(run_dir: Path, journal: Path | None = None) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    options = RunOptions(trials=2, retries=1)
    pipeline = apply_overrides(load_pipeline(str(SIX)), options)
    selection = select_cases([str(SIX.parent / "cases.jsonl")], pipeline, limit=CASES)
    steps = [
        analysis.StepSpec(s.id, s.endpoint, s.retry.max_attempts, tuple(sorted(s.retry.on))) for s in pipeline.steps
    ]
    return analysis.build_results(
        journal or run_dir / "attempts.jsonl",
        steps,
        results["run"],
        trials=2,
        confidence=0.95,
        isolate=True,
        order=selection.positions,
    ).to_dict()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in journal_text(path).splitlines()[1:]]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_the_chunk_size_changes_nothing(run_dir, monkeypatch, chunk):
    whole = rebuild(run_dir)
    monkeypatch.setattr(analysis, "CHUNK_LINES", chunk)
    monkeypatch.setattr(analysis, "FAILURES_KEPT", 4)  # and the running cut of failures, across chunks
    cut = rebuild(run_dir)
    for row_whole, row_cut in zip(whole["steps"], cut["steps"]):
        assert row_cut["failures"] == row_whole["failures"][:4]
        total = row_whole["failures_omitted"] + len(row_whole["failures"])
        assert row_cut["failures_omitted"] == total - min(4, total)
        for key in ("failures", "failures_omitted"):
            row_whole.pop(key), row_cut.pop(key)
    assert cut == whole


def test_tables_agree_with_a_plain_count_of_the_journal(run_dir):
    results = rebuild(run_dir)
    records = lines(run_dir / "attempts.jsonl")
    attempts = Counter((r["phase"], r["step"]) for r in records if "unit_done" not in r)
    outcomes = Counter((r["phase"], r["step"], r["outcome"]) for r in records if "unit_done" not in r)
    units = [r["unit_done"] for r in records if "unit_done" in r]
    assert len(units) == 2 * CASES == results["end_to_end"]["total"]
    ids = [json.loads(x)["id"] for x in (SIX.parent / "cases.jsonl").read_text().splitlines()[:CASES]]
    order = {case: i for i, case in enumerate(ids)}
    assert set(order) == {u["case"] for u in units}
    for row in results["steps"]:
        sid = row["id"]
        entries = [(u["case"], u["trial"], s) for u in units for s in u["steps"] if s["step"] == sid]
        assert row["reached"] == len(entries)
        assert row["passed"] == sum(s["final"] == "pass" for _, _, s in entries)
        assert row["retried"] == sum(s["attempts"] > 1 for _, _, s in entries)
        assert row["retry_recovered"] == sum(s["attempts"] > 1 and s["final"] == "pass" for _, _, s in entries)
        assert row["attempts"] == attempts[("chained", sid)]
        assert row["attempt_outcomes"] == {k: outcomes[("chained", sid, k)] for k in ("pass", "fail", "error")}
        assert row["isolated"]["attempts"] == attempts[("isolated", sid)]
        failed = sorted((order[c], t) for c, t, s in entries if s["final"] != "pass")
        assert [(order[f["case"]], f["trial"]) for f in row["failures"]] == failed
        latencies = sorted(r["latency_ms"] for r in records if r.get("step") == sid and r.get("phase") == "chained")
        assert row["latency_ms"]["max"] == round(latencies[-1], 3)
    per_case = Counter(u["case"] for u in units if u["passed"])
    assert results["end_to_end"]["flaky"] == [c for c in sorted(order, key=order.get) if per_case[c] == 1]


def test_unfinished_units_and_judge_lines_are_not_counted(run_dir, tmp_path):
    journal = tmp_path / "attempts.jsonl"
    text = journal_text(run_dir / "attempts.jsonl")
    first = next(r for r in lines(run_dir / "attempts.jsonl") if "unit_done" not in r)
    stray = [
        dict(first, trial=3, outcome="error", error_kind="timeout"),  # a unit that never finished
        dict(first, phase="judge", outcome="pass"),
    ]  # an llm-rubric judge's call
    head, rest = text.split("\n", 1)
    journal.write_text(
        head + "\n" + json.dumps(stray[0]) + "\n" + rest + json.dumps(stray[1]) + "\n" + '{"case": "torn", "tri'
    )  # and a torn last line
    assert rebuild(run_dir, journal) == rebuild(run_dir)
