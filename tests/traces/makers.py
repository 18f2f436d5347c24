"""Trace fixtures made by the real libraries (not typed by hand).

- OTLP: spans made with ``opentelemetry-sdk`` (GenAI semantic-convention attributes, an MCP
  ``tools/call`` span, a retried tool call with one tool-call id), encoded by the official
  OTLP encoder (``opentelemetry-exporter-otlp-proto-common``) into the protobuf
  ``ExportTraceServiceRequest`` and written as JSON two ways: protobuf's canonical JSON
  (``MessageToJson``: base64 ids, enum names, 64-bit integers as strings) and the OTLP/JSON
  file-exporter encoding (hex ids, enum integers).
- LangSmith: ``langsmith.schemas.Run`` records, serialised by the SDK's pydantic model.
- Langfuse: ``langfuse.api.ObservationV2`` records, serialised by the SDK's model with its
  camelCase aliases and with its snake_case field names.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.helpers import strip_volatile

T0 = 1_760_000_000_000_000_000  # ns


# ---------------------------------------------------------------- OTLP via opentelemetry-sdk


class _Ids:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1


def otel_spans(n_traces: int, seed: int = 1) -> list[Any]:
    """Finished SDK spans of ``n_traces`` agent traces (an agent span; a chat; a tool call,
    errored and retried in some traces with the same tool-call id; an MCP ``tools/call``;
    a final chat carrying its output; a non-GenAI HTTP span). Some traces use the older
    attribute spellings."""
    from opentelemetry.sdk.trace import IdGenerator, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode, set_span_in_context

    class Ids(_Ids, IdGenerator):
        pass

    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=Ids(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fixture")
    rng = random.Random(seed)
    for i in range(n_traces):
        t = T0 + i * 10_000_000_000
        old = i % 3 == 0  # older spellings
        agent = tracer.start_span(
            "invoke_agent support",
            start_time=t,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        )
        ctx = set_span_in_context(agent)
        t += 1000

        def child(name: str, attrs: dict[str, Any], dur: int, error: str | None = None, *, ctx: Any = ctx) -> int:
            nonlocal t
            span = tracer.start_span(name, context=ctx, start_time=t, attributes=attrs)
            if error is not None:
                span.set_attribute("error.type", error)
                span.record_exception(RuntimeError(f"{error} in {name}"))
                span.set_status(Status(StatusCode.ERROR, f"{error}: {name} failed"))
            span.end(end_time=t + dur)
            t += dur + 1000
            return t

        provider_key = "gen_ai.system" if old else "gen_ai.provider.name"
        tin, tout = (
            ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")
            if old
            else ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
        )
        chat_attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            provider_key: "openai",
            tin: 100 + i,
            tout: 20,
        }
        child("chat gpt-4o", chat_attrs, 5_000_000, "RateLimitError" if i % 17 == 5 else None)
        # the tool call: fails in ~1/4 of traces, retried once with the same call id (recovers 2 of 3)
        tool = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.id": f"call_{i}",
        }
        if i % 4 == 1:
            child("execute_tool lookup", tool, 2_000_000, "TimeoutError")
            child("execute_tool lookup", tool, 2_000_000, "TimeoutError" if i % 3 == 0 else None)
        else:
            child("execute_tool lookup", tool, 2_000_000)
        # an HTTP client span: not a GenAI step
        child("POST", {"http.request.method": "POST", "url.full": "http://127.0.0.1/x"}, 1_000_000)
        mcp = {
            "mcp.method.name": "tools/call",
            "gen_ai.tool.name": "search",
            "gen_ai.operation.name": "execute_tool",
            "jsonrpc.request.id": str(i),
        }
        child("tools/call search", mcp, 3_000_000, "tool_error" if i % 7 == 3 else None)
        answer = "billing" if rng.random() < 0.8 else "sorry, no idea"
        final = {
            **chat_attrs,
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
            ),
        }
        child("chat gpt-4o", final, 4_000_000)
        agent.end(end_time=t)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def otlp_documents(spans: Sequence[Any], batch: int = 7, seed: int = 3) -> list[dict[str, Any]]:
    """The spans in shuffled batches (as a file exporter flushes them), one
    ``ExportTraceServiceRequest`` each, as protobuf JSON dicts (base64 ids, enum names)."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    order = list(spans)
    random.Random(seed).shuffle(order)
    return [MessageToDict(encode_spans(order[i : i + batch])) for i in range(0, len(order), batch)]


def to_otlp_json(doc: dict[str, Any]) -> dict[str, Any]:
    """Protobuf JSON → the OTLP/JSON encoding: ids as hex, enums as integers."""
    kinds = {
        "SPAN_KIND_UNSPECIFIED": 0,
        "SPAN_KIND_INTERNAL": 1,
        "SPAN_KIND_SERVER": 2,
        "SPAN_KIND_CLIENT": 3,
        "SPAN_KIND_PRODUCER": 4,
        "SPAN_KIND_CONSUMER": 5,
    }
    codes = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
    doc = json.loads(json.dumps(doc))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                if "kind" in span:
                    span["kind"] = kinds[span["kind"]]
                if "code" in span.get("status", {}):
                    span["status"]["code"] = codes[span["status"]["code"]]
    return doc


def write_otlp(path: Path, n_traces: int = 40, *, hex_ids: bool = False, seed: int = 1) -> Path:
    """JSON Lines of ExportTraceServiceRequest documents (what the OTel file exporter writes)."""
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = otel_spans(n_traces, seed)
    order = list(spans)
    random.Random(seed + 2).shuffle(order)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(0, len(order), 7):
            request = encode_spans(order[i : i + 7])
            doc = json.loads(MessageToJson(request))  # the official protobuf JSON mapping
            if hex_ids:
                doc = to_otlp_json(doc)
            fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


# ---------------------------------------------------------------- LangSmith via langsmith.schemas.Run


def langsmith_runs(n_traces: int, seed: int = 2) -> list[Any]:
    """``Run`` records of LangGraph traces: a root graph run; nodes ``classify`` (its LLM call
    inside, errored in some traces and retried) and ``lookup`` (a tool, sometimes erroring)."""
    from langsmith.schemas import Run

    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    runs = []

    def run(
        name: str,
        run_type: str,
        trace: uuid.UUID,
        parent: uuid.UUID | None,
        t: datetime,
        ms: int,
        *,
        node: str | None = None,
        error: str | None = None,
        tokens: tuple[int, int] | None = None,
        outputs: dict[str, Any] | None = None,
        end: bool = True,
    ) -> Run:
        rid = uuid.UUID(int=rng.getrandbits(128), version=4)
        parent_order = next((r.dotted_order for r in runs if r.id == parent), "") if parent else ""
        dotted = (parent_order + "." if parent_order else "") + f"{t:%Y%m%dT%H%M%S%fZ}{rid}"
        extra = {"metadata": {"langgraph_node": node, "langgraph_step": 1}} if node else {"metadata": {}}
        r = Run(
            id=rid,
            trace_id=trace if parent else rid,
            parent_run_id=parent,
            name=name,
            run_type=run_type,
            start_time=t,
            end_time=t + timedelta(milliseconds=ms) if end else None,
            extra=extra,
            error=error,
            status="error" if error else ("success" if end else "pending"),
            inputs={"x": 1},
            outputs=outputs,
            prompt_tokens=tokens[0] if tokens else None,
            completion_tokens=tokens[1] if tokens else None,
            total_tokens=sum(tokens) if tokens else None,
            dotted_order=dotted,
        )
        runs.append(r)
        return r

    for i in range(n_traces):
        t = start + timedelta(seconds=10 * i)
        root_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        # the root first (its id is the trace id)
        root = run("LangGraph", "chain", root_id, None, t, 500)
        trace = root.id
        node = run(
            "classify",
            "chain",
            trace,
            root.id,
            t + timedelta(milliseconds=1),
            100,
            node="classify",
            outputs={"output": "billing"},
        )
        if i % 5 == 2:
            run(
                "ChatOpenAI",
                "llm",
                trace,
                node.id,
                t + timedelta(milliseconds=2),
                20,
                node="classify",
                error="APITimeoutError('Request timed out.')\n\nTraceback (most recent call last): ...",
            )
            run(
                "ChatOpenAI",
                "llm",
                trace,
                node.id,
                t + timedelta(milliseconds=30),
                20,
                node="classify",
                tokens=(50, 5),
                outputs={"generations": [[{"text": "billing"}]]},
            )
        else:
            run(
                "ChatOpenAI",
                "llm",
                trace,
                node.id,
                t + timedelta(milliseconds=2),
                20,
                node="classify",
                tokens=(50, 5),
                outputs={"generations": [[{"text": "billing"}]]},
            )
        run(
            "lookup",
            "tool",
            trace,
            root.id,
            t + timedelta(milliseconds=200),
            50,
            node="lookup",
            error="KeyError('account')" if i % 6 == 4 else None,
            outputs=None if i % 6 == 4 else {"output": "ok"},
        )
        if i % 10 == 9:
            run("draft", "chain", trace, root.id, t + timedelta(milliseconds=300), 50, node="draft", end=False)
    return runs


def write_langsmith(path: Path, n_traces: int = 30, *, as_array: bool = False) -> Path:
    runs = langsmith_runs(n_traces)
    random.Random(5).shuffle(runs)  # an export is not ordered by trace
    docs = [json.loads(r.model_dump_json()) for r in runs]  # the SDK model's own serialisation
    with open(path, "w", encoding="utf-8") as fh:
        if as_array:
            json.dump(docs, fh, indent=2)
        else:
            for d in docs:
                fh.write(json.dumps(d) + "\n")
    return path


# ---------------------------------------------------------------- Langfuse via langfuse.api.ObservationV2


def langfuse_observations(n_traces: int, seed: int = 4) -> list[Any]:
    """``ObservationV2`` records: a span ``pipeline`` holding a generation ``classify``
    (level ERROR in some traces), a tool ``lookup`` and an event."""
    from langfuse.api import ObservationV2

    rng = random.Random(seed)
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    out = []
    for i in range(n_traces):
        trace = f"trace-{i:04d}"
        t = start + timedelta(seconds=10 * i)

        def obs(
            name: str,
            type_: str,
            parent: str | None,
            ms0: int,
            ms: int | None,
            *,
            trace: str = trace,
            t: datetime = t,
            **kw: Any,
        ) -> str:
            oid = f"{rng.getrandbits(64):016x}"
            out.append(
                ObservationV2(
                    id=oid,
                    trace_id=trace,
                    project_id="p1",
                    parent_observation_id=parent,
                    type=type_,
                    name=name,
                    start_time=t + timedelta(milliseconds=ms0),
                    end_time=t + timedelta(milliseconds=ms0 + ms) if ms is not None else None,
                    **kw,
                )
            )
            return oid

        root = obs("pipeline", "SPAN", None, 0, 400, level="DEFAULT")
        bad = i % 4 == 3
        obs(
            "classify",
            "GENERATION",
            root,
            1,
            100,
            model="gpt-4o-mini",
            level="ERROR" if bad else "DEFAULT",
            status_message="RateLimitError: Rate limit reached" if bad else None,
            usage_details={"input": 40, "output": 3, "total": 43},
            output=None if bad else "billing",
        )
        obs(
            "lookup",
            "TOOL",
            root,
            150,
            50,
            level="ERROR" if i % 9 == 0 else "DEFAULT",
            status_message="tool raised" if i % 9 == 0 else None,
            output={"account": i},
        )
        obs("user-feedback", "EVENT", root, 300, None, level="DEFAULT")
    return out


def write_langfuse(path: Path, n_traces: int = 24, *, camel: bool = True, csv_format: bool = False) -> Path:
    observations = langfuse_observations(n_traces)
    random.Random(9).shuffle(observations)
    from pydantic_core import to_json

    # camelCase: the model's own serialisation (its API aliases); snake_case: its field names
    docs = [json.loads(o.model_dump_json()) if camel else json.loads(to_json(dict(o))) for o in observations]
    if csv_format:
        import csv

        keys = sorted({k for d in docs for k in d})
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, keys)
            w.writeheader()
            for d in docs:
                w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in d.items()})
        return path
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    return path


#: a pipeline whose ``traces:`` section maps the fixtures' records to its steps
PIPELINE = """\
version: 1
name: support-agent
endpoints:
  sim: {type: mock, reply: ok}
steps:
  - {id: agent, endpoint: sim, prompt: "x"}
  - {id: classify, endpoint: sim, prompt: "x"}
  - {id: lookup, endpoint: sim, prompt: "x"}
  - {id: search, endpoint: sim, prompt: "x"}
  - id: answer
    endpoint: sim
    prompt: "x"
    checks:
      - {type: one-of, value: [billing, tech, other]}
      - {type: equals, value: "{{ expect.answer }}"}
traces:
  agent: {match: {kind: invoke_agent}}
  answer:
    match: {step: chat gpt-4o, attributes: {gen_ai.output.messages: {regex: "."}}}
  classify: {match: {name: {regex: "^chat "}}}
  lookup: {match: {attributes: {gen_ai.tool.name: lookup}}}
  search:
    match:
      - {attributes: {mcp.method.name: tools/call}}
      - {name: never-seen}
"""


def stable_results(run_dir: Path) -> dict:
    """A run's results.json without what differs between two runs of the same input."""
    return strip_volatile(json.loads((run_dir / "results.json").read_text()))
