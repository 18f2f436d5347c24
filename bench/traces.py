"""Benchmark: ``relcheck traces`` streams a million OTLP spans in bounded memory.

Targets (issue #17): at least 50,000 spans/s and at most 300 MB peak RSS at 1,000,000 spans.

The input is what the OTel file exporter writes: JSON Lines of ``TracesData``, 100 spans a
line, with ids in hex and GenAI attributes (an agent span, chats, a tool call retried after
an error, an MCP ``tools/call``, a non-GenAI HTTP span: 10 spans a trace), traces
*interleaved* across lines (each line holds spans of 40 traces in flight, so a trace is
spread over several lines, as a batching exporter spreads it). Its shape is the shape the
``opentelemetry-sdk`` fixtures of ``tests/traces`` produce; it is generated directly here
because making a million spans through the SDK would take longer than reading them.

Each measurement runs in a fresh process (its peak RSS is that process's ``ru_maxrss``):

- baseline: ``json.loads`` of every line, nothing else (the floor any reader pays);
- relcheck: ``read_traces`` on the file — read, map steps, spill to part files, group and
  sort by trace, write the journal while the analysis of ``eval`` takes its records, build
  ``results.json``, gate. ``orjson`` parses the lines where it is installed (an optional
  speed-up: relcheck does not depend on it); ``--stdlib-json`` measures without it.

``--stages`` adds the CPU seconds of each stage (one more run, in a fresh process), to say
where the time goes.

Usage: ``python bench/traces.py [--spans N] [--quick] [--stdlib-json] [--stages]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPANS_PER_TRACE = 10
IN_FLIGHT = 40


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _trace_spans(rng: random.Random, t0: int) -> list[dict]:
    trace = f"{rng.getrandbits(128):032x}"
    root = f"{rng.getrandbits(64):016x}"
    spans = []
    t = t0

    def span(name: str, attrs: dict, dur: int, parent: str | None = root, error: str | None = None) -> str:
        nonlocal t
        sid = root if parent is None else f"{rng.getrandbits(64):016x}"
        s = {
            "traceId": trace,
            "spanId": sid,
            "name": name,
            "kind": 1 if parent else 2,
            "startTimeUnixNano": str(t),
            "endTimeUnixNano": str(t + dur),
            "attributes": [_attr(k, v) for k, v in attrs.items()],
            "status": {},
        }
        if parent is not None:
            s["parentSpanId"] = parent
        if error:
            s["status"] = {"code": 2, "message": f"{error}: {name} failed"}
            s["attributes"].append(_attr("error.type", error))
        spans.append(s)
        t += dur // 10 + 1000
        return sid

    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
    }
    span(
        "invoke_agent support",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        60_000_000,
        parent=None,
    )
    span("chat gpt-4o", chat, 5_000_000, error="RateLimitError" if rng.random() < 0.02 else None)
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup", "gen_ai.tool.call.id": "call_1"}
    failed = rng.random() < 0.1
    span("execute_tool lookup", tool, 2_000_000, error="TimeoutError" if failed else None)
    span("execute_tool lookup", tool, 2_000_000, error="TimeoutError" if failed and rng.random() < 0.3 else None)
    span("POST", {"http.request.method": "POST", "url.full": "https://api.example.invalid/v1"}, 1_000_000)
    span(
        "tools/call search",
        {"mcp.method.name": "tools/call", "gen_ai.tool.name": "search", "gen_ai.operation.name": "execute_tool"},
        3_000_000,
        error="tool_error" if rng.random() < 0.03 else None,
    )
    span("chat gpt-4o", chat, 4_000_000)
    span("execute_tool draft", {**tool, "gen_ai.tool.name": "draft", "gen_ai.tool.call.id": "call_2"}, 2_000_000)
    span("chat gpt-4o", chat, 4_000_000)
    span("POST", {"http.request.method": "POST", "url.full": "https://api.example.invalid/v1"}, 1_000_000)
    return spans


def generate(path: Path, n_spans: int, seed: int = 7) -> int:
    """Write ``n_spans`` spans (rounded to whole traces), traces interleaved; return the count."""
    rng = random.Random(seed)
    n_traces = max(1, n_spans // SPANS_PER_TRACE)
    pending: list[dict] = []
    written = 0
    next_trace = 0
    with open(path, "w", encoding="utf-8") as fh:
        while next_trace < n_traces or pending:
            while next_trace < n_traces and len(pending) < IN_FLIGHT * SPANS_PER_TRACE:
                pending.extend(_trace_spans(rng, 1_760_000_000_000_000_000 + next_trace * 1_000_000_000))
                next_trace += 1
            rng.shuffle(pending)
            batch, pending = pending[:100], pending[100:]
            doc = {
                "resourceSpans": [
                    {
                        "resource": {"attributes": [_attr("service.name", "support")]},
                        "scopeSpans": [{"scope": {"name": "bench"}, "spans": batch}],
                    }
                ]
            }
            fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
            written += len(batch)
    return written


_CHILD = {
    "baseline": """
import json, sys, time
t = time.perf_counter(); n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                n += len(ss["spans"])
elapsed = time.perf_counter() - t
""",
    "relcheck": """
import sys, time
from reliability_cli.traces import TraceOptions, read_traces, records
if sys.argv[4] == "stdlib":
    records.loads = records._json_loads
t = time.perf_counter()
outcome = read_traces([sys.argv[1]], TraceOptions(out=sys.argv[2], spill_dir=sys.argv[3]))
elapsed = time.perf_counter() - t
n = outcome.results.run.traces.records
""",
    "stages": """
import json, sys, time
from collections import Counter
from pathlib import Path
cpu = time.process_time
marks = [("start", cpu())]
from reliability_cli.results import analysis, schema
from reliability_cli.traces import otlp, records, run as traces_run
from reliability_cli.traces.spill import Spill
from reliability_cli.traces.steps import StepMapper
from reliability_cli.traces.units import UnitBuilder
if sys.argv[4] == "stdlib":
    records.loads = records._json_loads
marks.append(("imports (pydantic, …)", cpu()))
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir()
for _ in otlp.read(records.HashingFile(src), records.BadRecords()):
    pass
marks.append(("read: lines, JSON, spans → records (otlp.read alone)", cpu()))
spill, counts = Spill(sys.argv[3]), Counter()
spans = otlp.read(records.HashingFile(src), records.BadRecords())
traces_run._spill_records(spans, StepMapper(), None, spill, 0, counts)
marks.append(("read again + name steps + spill to part files", cpu()))
order = spill.step_order()
marks.append(("order the steps (a pass over the parts)", cpu()))
for _ in traces_run.write_journal(out / "bare.jsonl", {}, spill, UnitBuilder(order)):
    pass
marks.append(("group, build units, write the journal", cpu()))
units = spill.order()
journal = traces_run.write_journal(out / "attempts.jsonl", {}, spill, UnitBuilder(order))
agg = analysis.aggregate(journal, order, trials=1, isolate=False, order=units)
marks.append(("the same again, feeding analysis.aggregate", cpu()))
info = dict(
    source="traces", id="x", pipeline="traces", pipeline_path=None, pipeline_hash="", evalset_hash="",
    flags={}, description=None, dir=str(out), started_at="", finished_at="", duration_s=0.0,
    relcheck_version="", seed=0, trials=1, concurrency=None, isolate=False, retries=None, shard=None,
    evalsets=(), cases=len(units), units_planned=len(units), stop_reason=None, interrupted=False,
)
specs = [analysis.StepSpec(s, "otlp", 2) for s in order]
results = analysis.results_from(agg, specs, info, trials=1, confidence=0.95)
marks.append(("analysis.results_from (tables, intervals)", cpu()))
schema.write(results, out / "results.json")
marks.append(("schema.write (results.json, one line a unit)", cpu()))
spill.close()
elapsed, n = 0.0, counts["records"]
stages = [(label, b - a) for (_, a), (label, b) in zip(marks, marks[1:])]
""",
}
_REPORT = """
import json, resource
usage = resource.getrusage(resource.RUSAGE_SELF)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # (relcheck's reading/grouping processes)
cpu_s = usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime
stages = globals().get("stages", [])
print(json.dumps({"elapsed": elapsed, "spans": n, "rss_mb": usage.ru_maxrss / 1024, "cpu": cpu_s, "marks": stages,
                  "worker_rss_mb": workers.ru_maxrss / 1024}))
"""


def measure(kind: str, path: Path, work: Path, json_mode: str = "auto") -> dict:
    out = work / f"run-{kind}-{time.monotonic_ns()}"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD[kind] + _REPORT, str(path), str(out), str(work), json_mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="20,000 spans (targets are not judged)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--stdlib-json", action="store_true", help="parse with json, not orjson (where installed)")
    ap.add_argument("--stages", action="store_true", help="also: CPU seconds per stage (one more run)")
    args = ap.parse_args(argv)
    json_mode = "stdlib" if args.stdlib_json else "auto"
    n = 20_000 if args.quick else args.spans
    with tempfile.TemporaryDirectory(prefix="relcheck-bench-traces-") as tmp:
        work = Path(tmp)
        path = work / "spans.jsonl"
        t = time.perf_counter()
        spans = generate(path, n)
        print(f"generated {spans:,} spans ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        base = min((measure("baseline", path, work) for _ in range(args.repeat)), key=lambda r: r["elapsed"])
        runs = [measure("relcheck", path, work, json_mode) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["elapsed"])
        peak = max(r["rss_mb"] for r in runs)
        stages = measure("stages", path, work, json_mode)["marks"] if args.stages else []
    rate = spans / best["elapsed"]
    judged = not args.quick
    ok_rate, ok_rss = rate >= 50_000, peak <= 300
    print(
        f"baseline (json.loads of every line): {base['elapsed']:.2f} s = {spans / base['elapsed']:,.0f} spans/s, "
        f"peak RSS {base['rss_mb']:.1f} MB"
    )
    print(
        f"relcheck traces / baseline: {best['elapsed']:.2f} s / {base['elapsed']:.2f} s = "
        f"{best['elapsed'] / base['elapsed']:.2f}×  (CPU {best['cpu']:.2f} s / {base['cpu']:.2f} s of the whole "
        f"processes; JSON: {'json' if args.stdlib_json else 'orjson where installed'}; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + ")"
    )
    for label, seconds in stages:
        print(f"  stage CPU {seconds:6.2f} s = {seconds / spans * 1e6:5.1f} µs a span  {label}")
    tag = (lambda ok: "PASS" if ok else "MISS") if judged else (lambda ok: "INFO")
    print(f"{tag(ok_rate)}  (t) spans per second: {rate:,.0f} (target ≥ 50,000)")
    print(f"{tag(ok_rss)}  (t) peak RSS: {peak:.1f} MB at {spans:,} spans (target ≤ 300 MB)")
    worker = max(r.get("worker_rss_mb", 0) for r in runs)
    if worker:
        print(f"      worker processes (reading, grouping): peak RSS {worker:.1f} MB each (shared pages counted)")
    return 0 if (not judged or (ok_rate and ok_rss)) else 1


if __name__ == "__main__":
    sys.exit(main())
