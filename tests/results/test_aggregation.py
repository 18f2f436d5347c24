"""The streaming aggregation against an independent count made directly from a journal.

The journal is a real run (three trials, ``--isolate``, one retry, a high fail rate, so the
failures cap is crossed on every step) whose attempt lines are then given costs (priced and
unpriced), cached answers, tokens, throttling and error kinds, plus lines that must not
count: a unit that never finished and an ``llm-rubric`` judge's calls; one case is not in
the eval set. Every figure of ``results.json`` is then recounted here from the lines.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from reliability_cli import stats
from reliability_cli.results import analysis
from reliability_cli.runner import RunOptions, run_eval
from tests.helpers import ROOT, SIX, journal_text

CASES = 120
TRIALS = 3
KEPT = 8  # failures kept per step: well below the failures of every step
STEPS = ["extract", "classify", "lookup", "plan", "draft", "verify"]


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    work = tmp_path_factory.mktemp("agg")
    shutil.copy(SIX.parent / "cases.jsonl", work / "cases.jsonl")
    text = SIX.read_text().replace("fail_rate: 0.03", "fail_rate: 0.35")
    text = text.replace(
        "endpoints:\n",
        'endpoints:\n  flaky: {type: mock, fail_rate: 0.3, failure: error, reply: "{{ expect[step.id] }}"}\n',
        1,
    ).replace("  - id: lookup\n    endpoint: sim", "  - id: lookup\n    endpoint: flaky")
    (work / "pipeline.yaml").write_text(text)
    run = work / "run"
    run_eval(
        str(work / "pipeline.yaml"),
        RunOptions(out=str(run), trials=TRIALS, retries=1, isolate=True, limit=CASES, concurrency=16),
    )
    rng = random.Random(11)
    lines = journal_text(run / "attempts.jsonl").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        rec = json.loads(line)
        if "unit_done" in rec:
            if rec["unit_done"]["case"] == "ticket-0007":
                rec["unit_done"]["case"] = "not-in-the-set"  # (its attempts then never finish)
            out.append(json.dumps(rec))
            continue
        r = rng.random()
        rec["cost_usd"] = None if r < 0.2 else rng.random() * 1e-3 if r < 0.7 else rng.choice([0.0, 1.5e-05, 2.5e-07])
        if rec["step"] == "verify":
            rec["cost_usd"] = None  # an unpriced step
        if rng.random() < 0.15:
            rec["cached"] = True
        rec["tokens_in"], rec["tokens_out"] = rng.randint(0, 900), rng.choice([None, rng.randint(0, 300)])
        rec["throttled"] = rng.choice([0, 0, 0, 1, 2])
        if rng.random() < 0.1:
            rec["outcome"], rec["error_kind"] = "error", rng.choice(["timeout", "http_5xx", None])
        rec["latency_ms"] = rng.choice([rng.random() * 2000, round(rng.expovariate(0.002), 3), None])
        out.append(json.dumps(rec))
        if rng.random() < 0.02:
            out.append(json.dumps(dict(rec, phase="judge", outcome="pass")))
        if rng.random() < 0.01:
            out.append(json.dumps(dict(rec, trial=TRIALS + 1)))  # a unit that never finished
    path = work / "attempts.jsonl"
    path.write_text("\n".join(out) + "\n")
    ids = [json.loads(x)["id"] for x in (SIX.parent / "cases.jsonl").read_text().splitlines()[:CASES]]
    return path, {case: i for i, case in enumerate(ids)}


def build(path: Path, order: dict[str, int]) -> dict:
    steps = [analysis.StepSpec(s, "sim", 2) for s in STEPS]
    info = json.loads((path.parent / "run" / "results.json").read_text())["run"]
    results = analysis.build_results(path, steps, info, trials=TRIALS, confidence=0.95, isolate=True, order=dict(order))
    return results.to_dict()


def test_every_figure_is_the_plain_count_of_the_journal(journal, monkeypatch):
    path, order = journal
    monkeypatch.setattr(analysis, "FAILURES_KEPT", KEPT)
    results = build(path, order)
    records = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    units = [r["unit_done"] for r in records if "unit_done" in r]
    finished = {(u["case"], u["trial"]) for u in units}
    attempts = [r for r in records if "unit_done" not in r and (r["case"], r["trial"]) in finished]
    position = dict(order, **{"not-in-the-set": CASES})  # a case not in the set comes after every one
    assert len(units) == CASES * TRIALS and results["end_to_end"]["total"] == len(units)
    for row in results["steps"]:
        for phase, figures in (("chained", row), ("isolated", row["isolated"])):
            mine = [r for r in attempts if r["step"] == row["id"] and r["phase"] == phase]
            assert figures["attempts"] == len(mine)
            entries = [(u["case"], u["trial"], s) for u in units for s in u[phase if phase == "isolated" else "steps"]]
            entries = [(c, t, s) for c, t, s in entries if s["step"] == row["id"] and s["final"] != "skipped"]
            passed = [s["final"] == "pass" for _, _, s in entries]
            assert figures["reached"] == len(entries) and figures["passed"] == sum(passed)
            assert figures["failed"] == sum(s["final"] == "fail" for _, _, s in entries)
            assert figures["first_try_passed"] == sum(s["first"] == "pass" for _, _, s in entries)
            if phase == "isolated":
                shares: dict[str, list[int]] = {}
                for (c, _, _), p in sorted(zip(entries, passed), key=lambda e: position[e[0][0]]):
                    shares.setdefault(c, [0, 0])
                    shares[c][0] += p
                    shares[c][1] += 1
                assert figures["case_counts"] == shares  # in eval-set order
                assert list(figures["case_counts"]) == list(shares)
                continue
            assert row["attempt_outcomes"] == {
                k: sum(r["outcome"] == k for r in mine) for k in ("pass", "fail", "error")
            }
            kinds = Counter(r["error_kind"] or "unknown" for r in mine if r["outcome"] == "error")
            assert row["error_kinds"] == dict(sorted(kinds.items()))
            assert row["retried"] == sum(s["attempts"] > 1 for _, _, s in entries)
            assert row["retry_recovered"] == sum(s["attempts"] > 1 and s["final"] == "pass" for _, _, s in entries)
            assert row["cached"] == sum(bool(r.get("cached")) for r in mine)
            assert row["throttled"] == sum(r["throttled"] for r in mine)
            assert row["tokens"] == {
                "input": sum(r["tokens_in"] or 0 for r in mine),
                "output": sum(r["tokens_out"] or 0 for r in mine),
            }
            costs = [r["cost_usd"] for r in mine if r["cost_usd"] is not None]
            if row["id"] == "verify":
                assert not costs and row["cost_usd"] is None
            else:
                assert row["cost_usd"] == pytest.approx(round(math.fsum(costs), 6), abs=1.5e-6)
            latencies = np.array([float(r["latency_ms"] or 0.0) for r in mine if not r.get("cached")])
            p50, p95, top = (float(x) for x in (*np.percentile(latencies, [50, 95]), latencies.max()))
            assert row["latency_ms"] == {"p50": round(p50, 3), "p95": round(p95, 3), "max": round(top, 3)}
            failed = [(c, t, s) for c, t, s in entries if s["final"] != "pass"]  # arrival order
            failed.sort(key=lambda e: (position[e[0]], e[1]))  # stable: arrival breaks ties
            assert len(failed) > KEPT
            keys = ["error_kind", "reason", "output"]
            assert row["failures"] == [
                {"case": c, "trial": t, "outcome": s["final"], **{k: s[k] for k in keys}} for c, t, s in failed[:KEPT]
            ]
            assert row["failures_omitted"] == len(failed) - KEPT
    expected = sorted(units, key=lambda u: (position[u["case"]], u["trial"]))
    assert [
        (u["case"], u["index"], u["trial"], u["passed"], u["failed_step"], u["attempts"]) for u in results["units"]
    ] == [(u["case"], position[u["case"]], u["trial"], u["passed"], u["failed_step"], u["attempts"]) for u in expected]
    assert results["end_to_end"]["passed"] == sum(u["passed"] for u in units)


def test_the_failures_cap_changes_nothing_else(journal, monkeypatch):
    path, order = journal
    whole = build(path, order)
    monkeypatch.setattr(analysis, "FAILURES_KEPT", KEPT)
    cut = build(path, order)
    for row_whole, row_cut in zip(whole["steps"], cut["steps"]):
        assert row_cut["failures"] == row_whole["failures"][:KEPT]
        assert row_cut["failures_omitted"] == row_whole["failures_omitted"] + len(row_whole["failures"]) - KEPT
        for key in ("failures", "failures_omitted"):
            row_whole.pop(key), row_cut.pop(key)
    assert cut == whole


@pytest.mark.parametrize("kept", [KEPT, 100_000])
def test_parts_aggregated_apart_and_absorbed_in_order_give_one_passs_figures(journal, monkeypatch, tmp_path, kept):
    """``relcheck traces`` aggregates each part of its journal in a worker process and joins
    the parts (``Aggregate.absorb``): the results are one pass's — counters, latencies, the
    failures kept (across parts, in eval-set order, then arrival), per-case shares, units —
    even for cases the order lacks, first seen in different parts, and for a unit that comes
    twice. Costs end a block where a part ends."""
    import pickle

    path, order = journal
    monkeypatch.setattr(analysis, "FAILURES_KEPT", kept)
    header, *lines = path.read_text().splitlines()
    records = [json.loads(x) for x in lines]
    finished = {(r["unit_done"]["case"], r["unit_done"]["trial"]) for r in records if "unit_done" in r}
    # each unit's attempts just before its unit_done, as traces writes them (an eval interleaves
    # the units in flight, and a part must hold whole units)
    waiting: dict[tuple[str, int], list[dict]] = {}
    grouped: list[dict] = []
    for r in records:
        if "unit_done" in r:
            grouped += waiting.pop((r["unit_done"]["case"], r["unit_done"]["trial"]), [])
            grouped.append(r)
        elif (r["case"], r["trial"]) in finished:
            waiting.setdefault((r["case"], r["trial"]), []).append(r)
        else:
            grouped.append(r)  # (a unit that never finished: never counted)
    units = [r["unit_done"] for r in grouped if "unit_done" in r]
    failed = [u for u in units if not u["passed"] and u["case"] in order]
    # two cases the order lacks, with failures: one among the first units, one among the last
    renamed = {failed[0]["case"]: "stranger-early", failed[-1]["case"]: "stranger-late"}
    for r in grouped:
        rec = r.get("unit_done", r)
        rec["case"] = renamed.get(rec["case"], rec["case"])
    ends = [i + 1 for i, r in enumerate(grouped) if "unit_done" in r]
    cuts = sorted(random.Random(kept).sample(ends[5:-5], 5))
    # the last failed unit of the part before the last, once more first in the last part: its
    # failures sort after its first's (arrival is counted across the parts)
    twice = [r["unit_done"] for r in grouped[cuts[-2] : cuts[-1]] if "unit_done" in r and not r["unit_done"]["passed"]]
    again = json.loads(json.dumps(twice[-1]).replace('"reason": ', '"reason": "again", "was": '))
    grouped.insert(cuts[-1], {"unit_done": again})
    parts = [grouped[a:b] for a, b in zip([0, *cuts], [*cuts, len(grouped)])]
    seen = [{r["unit_done"]["case"] for r in p if "unit_done" in r} for p in parts]
    assert "stranger-early" in seen[0] and "stranger-late" in seen[-1] and "stranger-early" not in seen[-1]
    (tmp_path / "run").mkdir()
    shutil.copy(path.parent / "run" / "results.json", tmp_path / "run" / "results.json")
    journal_path = tmp_path / "attempts.jsonl"
    journal_path.write_text("\n".join([header, *map(json.dumps, grouped)]) + "\n")
    whole = build(journal_path, order)

    def aggregate(recs: list[dict]) -> analysis.Aggregate:
        return analysis.aggregate(recs, STEPS, trials=TRIALS, isolate=True, order=dict(order))

    joined = aggregate(parts[0])
    for part in parts[1:]:
        joined.absorb(pickle.loads(pickle.dumps(aggregate(part))))  # (as from a worker process)
    steps = [analysis.StepSpec(s, "sim", 2) for s in STEPS]
    info = json.loads((path.parent / "run" / "results.json").read_text())["run"]
    split = analysis.results_from(joined, steps, info, trials=TRIALS, confidence=0.95).to_dict()
    for one, other in zip(whole["steps"], split["steps"]):
        assert (one["cost_usd"] is None) == (other["cost_usd"] is None)
        assert other.pop("cost_usd") == pytest.approx(one.pop("cost_usd"), abs=2e-6)
    whole["run"].pop("cost_usd"), split["run"].pop("cost_usd")
    assert split == whole
    kept_cases = [f["case"] for row in split["steps"] for f in row["failures"]]
    if kept > CASES * TRIALS:
        assert {"stranger-early", "stranger-late", again["case"]} <= set(kept_cases)
        assert any(f["reason"] == "again" for row in split["steps"] for f in row["failures"])
    with pytest.raises(ValueError, match="cannot be absorbed"):
        joined.absorb(analysis.aggregate([], STEPS[:2], trials=TRIALS, isolate=True, order=dict(order)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 19, 20, 21, 100, 1001])
def test_percentiles_in_python_are_numpys_to_the_bit(n, monkeypatch):
    rng = random.Random(n)
    samples = [
        [rng.random() * 1000 for _ in range(n)],
        [float(rng.randint(0, 9)) for _ in range(n)],  # ties
        [round(rng.expovariate(0.01), 3) for _ in range(n)],
    ]
    for values in samples:
        in_python = stats.percentiles(values)
        monkeypatch.setattr(stats, "PERCENTILES_IN_PYTHON", 0)  # numpy.percentile
        with_numpy = stats.percentiles(values)
        monkeypatch.undo()
        assert {k: v.hex() for k, v in in_python.items()} == {k: v.hex() for k, v in with_numpy.items()}  # type: ignore[union-attr]


def test_merge_report_and_traces_import_no_pandas(journal, tmp_path):
    """The commands that aggregate a journal or read results never import pandas (``compare``
    does): an ``atexit`` hook that a ``sitecustomize`` installs lists what was imported."""
    path, _ = journal
    seen = tmp_path / "modules.txt"
    (tmp_path / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(seen)!r}, 'a').write(str('pandas' in sys.modules) + '\\n'))\n"
    )
    run = path.parent / "run"
    spans = tmp_path / "spans.jsonl"
    from tests.traces import makers

    makers.write_otlp(spans, 30)
    commands = [
        ["merge", str(run), "-o", str(tmp_path / "merged.json")],
        ["report", str(run), "--format", "markdown"],
        ["traces", str(spans), "--out", str(tmp_path / "traced")],
        ["compare", str(run), str(run)],
    ]
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "reliability_cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode in (0, 1, 3), (args, done.stderr)  # (3: one run merged is incomplete shards)
    assert (tmp_path / "merged.json").exists() and (tmp_path / "traced" / "results.json").exists()
    assert seen.read_text().split() == ["False", "False", "False", "True"]  # the hook does see compare's
