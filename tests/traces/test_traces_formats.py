"""Each format's per-step figures equal a count made directly from the fixture.

The fixtures are made by the real libraries (see ``makers``). The direct counts read the
files with the libraries' own parsers where one exists (protobuf's ``json_format.Parse``
for OTLP) and plain ``json``/``csv`` otherwise, independently of relcheck's readers.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from reliability_cli.traces import TraceOptions, read_traces
from tests.traces import makers

KINDS = {"TimeoutError": "timeout", "RateLimitError": "http_429", "tool_error": "tool_error"}


def _run(tmp_path: Path, files: list[Path], **kw) -> dict:
    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    return read_traces([str(f) for f in files], TraceOptions(out=str(out), **kw)).results.to_dict()


def _steps(results: dict) -> dict[str, dict]:
    return {s["id"]: s for s in results["steps"]}


def _expect_rows(records: list[dict]) -> tuple[dict[str, dict], int, int]:
    """records: {trace, step, occurrence, start, error, kind, tin, tout} → per-step figures,
    end-to-end passes and units. A step passes in a trace when the last record of each of its
    occurrences did not error."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_trace[r["trace"]].append(r)
    rows: dict[str, dict] = defaultdict(
        lambda: {
            "reached": 0,
            "passed": 0,
            "attempts": 0,
            "errors_att": 0,
            "kinds": Counter(),
            "tin": 0,
            "tout": 0,
            "retried": 0,
            "recovered": 0,
            "first_pass": 0,
        }
    )
    e2e = 0
    for recs in by_trace.values():
        ok = True
        steps: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in sorted(recs, key=lambda r: r["start"]):
            steps[r["step"]][r["occurrence"]].append(r)
            row = rows[r["step"]]
            row["attempts"] += 1
            row["tin"] += r["tin"]
            row["tout"] += r["tout"]
            if r["error"]:
                row["errors_att"] += 1
                row["kinds"][r["kind"]] += 1
        for step, occs in steps.items():
            row = rows[step]
            row["reached"] += 1
            passed = all(not o[-1]["error"] for o in occs.values())
            row["passed"] += passed
            row["first_pass"] += all(not o[0]["error"] for o in occs.values())
            if any(len(o) > 1 for o in occs.values()):
                row["retried"] += 1
                row["recovered"] += passed
            ok = ok and passed
        e2e += ok
    return rows, e2e, len(by_trace)


def _assert_rows(results: dict, rows: dict[str, dict], e2e: int, units: int) -> None:
    got = _steps(results)
    assert set(got) == set(rows)
    for step, want in rows.items():
        s = got[step]
        assert (s["reached"], s["passed"], s["errors"], s["failed"]) == (
            want["reached"],
            want["passed"],
            want["reached"] - want["passed"],
            0,
        ), step
        assert s["attempts"] == want["attempts"], step
        assert s["attempt_outcomes"]["error"] == want["errors_att"], step
        assert s["error_kinds"] == dict(want["kinds"]), step
        assert s["tokens"] == {"input": want["tin"], "output": want["tout"]}, step
        assert s["retried"] == want["retried"] and s["retry_recovered"] == want["recovered"], step
        assert s["first_try_rate"] == pytest.approx(want["first_pass"] / want["reached"]), step
    assert results["end_to_end"]["passed"] == e2e
    assert results["end_to_end"]["total"] == units
    assert len(results["units"]) == units


# ---------------------------------------------------------------------------- OTLP


def _otlp_direct(path: Path) -> list[dict]:
    from google.protobuf.json_format import Parse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    out = []
    for line in path.read_text().splitlines():
        req = Parse(line, ExportTraceServiceRequest())
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    if span.name == "POST":  # the HTTP span: not a GenAI step
                        continue
                    attrs = {a.key: a.value for a in span.attributes}
                    tin = attrs.get("gen_ai.usage.input_tokens") or attrs.get("gen_ai.usage.prompt_tokens")
                    tout = attrs.get("gen_ai.usage.output_tokens") or attrs.get("gen_ai.usage.completion_tokens")
                    call = attrs.get("gen_ai.tool.call.id")
                    error = span.status.code == Status.STATUS_CODE_ERROR
                    out.append(
                        {
                            "trace": span.trace_id.hex(),
                            "step": span.name,
                            "start": span.start_time_unix_nano,
                            "occurrence": call.string_value if call else span.span_id.hex(),
                            "error": error,
                            "kind": KINDS[attrs["error.type"].string_value] if error else None,
                            "tin": tin.int_value if tin else 0,
                            "tout": tout.int_value if tout else 0,
                        }
                    )
    return out


def test_otlp_per_step_figures_equal_a_direct_count(tmp_path: Path) -> None:
    path = makers.write_otlp(tmp_path / "spans.jsonl", 60)
    results = _run(tmp_path, [path])
    rows, e2e, units = _expect_rows(_otlp_direct(path))
    _assert_rows(results, rows, e2e, units)
    lookup = _steps(results)["execute_tool lookup"]
    # the generator's plan: lookup fails in traces i % 4 == 1, retried once; the retry fails when i % 3 == 0
    failing_first = [i for i in range(60) if i % 4 == 1]
    assert lookup["retried"] == len(failing_first)
    assert lookup["retry_recovered"] == sum(1 for i in failing_first if i % 3 != 0)
    assert lookup["recovery_rate"] == pytest.approx(lookup["retry_recovered"] / lookup["retried"])
    assert results["run"]["traces"]["retries"] == len(failing_first)
    # the MCP tools/call span is its own step; older and current token spellings are both summed
    assert _steps(results)["tools/call search"]["errors"] == sum(1 for i in range(60) if i % 7 == 3)
    assert _steps(results)["chat gpt-4o"]["tokens"]["input"] == sum(2 * (100 + i) for i in range(60))
    assert results["run"]["traces"]["not_steps"] == 60  # one HTTP span per trace


def test_otlp_hex_and_base64_encodings_give_the_same_results(tmp_path: Path) -> None:
    a = _run(tmp_path, [makers.write_otlp(tmp_path / "b64.jsonl", 30)])
    b = _run(tmp_path, [makers.write_otlp(tmp_path / "hex.jsonl", 30, hex_ids=True)])
    assert '"kind":"SPAN_KIND_INTERNAL"' in (tmp_path / "b64.jsonl").read_text()
    assert '"kind":1' in (tmp_path / "hex.jsonl").read_text()
    assert a["steps"] == b["steps"]
    assert a["units"] == b["units"]  # (hex trace ids either way)


def test_one_pretty_printed_document_and_traces_split_across_files(tmp_path: Path) -> None:
    spans = makers.otel_spans(20)
    docs = makers.otlp_documents(spans, batch=9)
    whole = tmp_path / "one.json"
    from google.protobuf.json_format import MessageToDict, ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    merged = ExportTraceServiceRequest()
    for d in docs:
        merged.MergeFrom(ParseDict(d, ExportTraceServiceRequest()))
    whole.write_text(json.dumps(MessageToDict(merged), indent=2))
    halves = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for i, p in enumerate(halves):
        p.write_text("".join(json.dumps(d) + "\n" for d in docs[i::2]))
    one, split = _run(tmp_path, [whole]), _run(tmp_path, halves)
    assert one["steps"] == split["steps"] and one["units"] == split["units"]
    assert one["end_to_end"]["total"] == 20
    # the same spans given twice (two overlapping exports) count once
    twice = _run(tmp_path, [*halves, halves[0]])
    assert twice["steps"] == split["steps"]
    assert twice["run"]["traces"]["duplicates"] > 0


def test_incomplete_spans_are_excluded_and_counted(tmp_path: Path) -> None:
    path = makers.write_otlp(tmp_path / "spans.jsonl", 10)
    lines = path.read_text().splitlines()
    doc = json.loads(lines[0])
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    cut = span["name"] != "POST"
    del span["endTimeUnixNano"]
    lines[0] = json.dumps(doc)
    path.write_text("\n".join(lines) + "\n")
    results = _run(tmp_path, [path])
    assert results["run"]["traces"]["incomplete"] == (1 if cut else 0)
    assert any("without an end time" in n for n in results["run"]["notes"]) == cut
    assert results["run"]["inputs"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- LangSmith


def _langsmith_direct(path: Path) -> tuple[list[dict], int]:
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    out, incomplete = [], 0
    for r in runs:
        if r["end_time"] is None:
            incomplete += 1
            continue
        node = (r["extra"].get("metadata") or {}).get("langgraph_node")
        step = f"{node}/{r['name']}" if node and node != r["name"] else r["name"]
        kind = r["error"].split("(")[0] if r["error"] else None
        kind = {"APITimeoutError": "timeout"}.get(kind, kind)
        # the one step with two records in a trace is the retried LLM call: one occurrence
        out.append(
            {
                "trace": r["trace_id"],
                "step": step,
                "start": r["start_time"],
                "occurrence": step,
                "error": r["error"] is not None,
                "kind": kind,
                "tin": r["prompt_tokens"] or 0,
                "tout": r["completion_tokens"] or 0,
            }
        )
    return out, incomplete


def test_langsmith_per_step_figures_equal_a_direct_count(tmp_path: Path) -> None:
    path = makers.write_langsmith(tmp_path / "runs.jsonl", 40)
    results = _run(tmp_path, [path])
    records, incomplete = _langsmith_direct(path)
    rows, e2e, units = _expect_rows(records)
    _assert_rows(results, rows, e2e, units)
    assert results["run"]["traces"]["incomplete"] == incomplete == 4
    llm = _steps(results)["classify/ChatOpenAI"]
    assert llm["retried"] == llm["retry_recovered"] == sum(1 for i in range(40) if i % 5 == 2)
    assert llm["recovery_rate"] == 1.0
    array = _run(tmp_path, [makers.write_langsmith(tmp_path / "runs.json", 40, as_array=True)])
    assert array["steps"] == results["steps"]


# ---------------------------------------------------------------------------- Langfuse


def _langfuse_direct(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    out = []
    for r in rows:
        if r["type"] == "EVENT":
            continue
        usage = r.get("usageDetails") or r.get("usage_details") or {}
        usage = json.loads(usage) if isinstance(usage, str) else usage
        error = r["level"] == "ERROR"
        message = r.get("statusMessage") or r.get("status_message")
        out.append(
            {
                "trace": r.get("traceId") or r.get("trace_id"),
                "step": f"{r['type'].lower()} {r['name']}",
                "start": r.get("startTime") or r.get("start_time"),
                "occurrence": r["id"],
                "error": error,
                "kind": ("http_429" if message.startswith("RateLimitError") else "error") if error else None,
                "tin": usage.get("input", 0),
                "tout": usage.get("output", 0),
            }
        )
    return out


@pytest.mark.parametrize("camel,csv_format", [(True, False), (False, False), (True, True), (False, True)])
def test_langfuse_per_step_figures_equal_a_direct_count(tmp_path: Path, camel: bool, csv_format: bool) -> None:
    path = makers.write_langfuse(
        tmp_path / ("obs.csv" if csv_format else "obs.jsonl"), 36, camel=camel, csv_format=csv_format
    )
    text = path.read_text()
    assert ("parentObservationId" in text) == camel and ("parent_observation_id" in text) == (not camel)
    results = _run(tmp_path, [path])
    rows, e2e, units = _expect_rows(_langfuse_direct(path))
    _assert_rows(results, rows, e2e, units)
    assert results["run"]["traces"]["not_steps"] == 36  # one event per trace
    assert results["run"]["inputs"][0]["format"] == "langfuse"


def test_otlp_snake_case_fields_and_64_bit_integers_as_numbers(tmp_path: Path) -> None:
    """protobuf's JSON with the proto's own field names (``preserving_proto_field_name``), and
    the 64-bit integers (times, ``intValue``) written as JSON numbers instead of strings."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = makers.otel_spans(15)
    snake = MessageToDict(encode_spans(spans), preserving_proto_field_name=True)
    text = json.dumps(snake)
    assert '"resource_spans"' in text and '"start_time_unix_nano"' in text

    def numbers(node):
        if isinstance(node, dict):
            return {
                k: (int(v) if k in ("start_time_unix_nano", "end_time_unix_nano", "int_value") else numbers(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [numbers(v) for v in node]
        return node

    a, b = tmp_path / "snake.jsonl", tmp_path / "numbers.jsonl"
    a.write_text(json.dumps(snake) + "\n")
    b.write_text(json.dumps(numbers(snake)) + "\n")
    camel = tmp_path / "camel.jsonl"
    camel.write_text(json.dumps(MessageToDict(encode_spans(spans))) + "\n")
    want = _run(tmp_path, [camel])
    for path in (a, b):
        got = _run(tmp_path, [path])
        assert got["steps"] == want["steps"] and got["units"] == want["units"]
    assert _steps(want)["chat gpt-4o"]["tokens"]["input"] == sum(2 * (100 + i) for i in range(15))
