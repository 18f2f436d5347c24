"""LangSmith runs: JSON Lines (or a JSON array) of run records, as the SDK's ``Run`` schema
serialises them (``list_runs``, the bulk export)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .records import (
    BadRecord,
    BadRecords,
    HashingFile,
    TraceRecord,
    as_int,
    check_order,
    error_kind,
    json_items,
    output_text,
    parse_time,
    read_record,
)


def default_step(name: str, metadata: Mapping[str, Any]) -> str:
    """``name``; a run inside a LangGraph node that is not the node's own run is
    ``node/name`` (``classify/ChatOpenAI``), so a node and the calls it makes stay apart."""
    node = metadata.get("langgraph_node")
    if isinstance(node, str) and node and node != name:
        return f"{node}/{name}"
    return name


def run_record(run: Any, line: int | None) -> TraceRecord:
    if not isinstance(run, dict):
        raise BadRecord("a run must be an object")
    run_id = run.get("id")
    if not isinstance(run_id, str) or not run_id:
        raise BadRecord("id: missing or not a string")
    trace = run.get("trace_id") or (run_id if not run.get("parent_run_id") else None)
    if not isinstance(trace, str):
        raise BadRecord("trace_id: missing (a child run must name its trace)")
    name = run.get("name")
    if not isinstance(name, str):
        raise BadRecord("name: missing or not a string")
    start = parse_time(run.get("start_time"), "start_time")
    end = parse_time(run["end_time"], "end_time") if run.get("end_time") else None
    check_order(start, end, "start_time", "end_time")
    extra = run.get("extra") or {}
    metadata = (extra.get("metadata") if isinstance(extra, dict) else None) or {}
    if not isinstance(metadata, dict):
        raise BadRecord("extra.metadata: expected an object")
    error = run.get("error")
    errored = bool(error) or run.get("status") == "error"
    message = str(error) if error else None
    kind = error_kind(metadata.get("error.type"), message) if errored else None
    reason = (message.strip().splitlines()[0] if message and message.strip() else kind) if errored else None
    attrs = {
        **{f"metadata.{k}": v for k, v in metadata.items()},
        "run_type": run.get("run_type"),
        "tags": run.get("tags") or [],
    }
    outputs = run.get("outputs")
    call = metadata.get("tool_call_id")
    return TraceRecord(
        trace=trace,
        id=run_id,
        parent=run.get("parent_run_id") or None,
        name=name,
        kind=run.get("run_type"),
        start=start,
        end=end,
        error=errored,
        error_kind=kind,
        reason=reason,
        tokens_in=as_int(run.get("prompt_tokens", run.get("input_tokens"))),
        tokens_out=as_int(run.get("completion_tokens", run.get("output_tokens"))),
        call_id=str(call) if call is not None else None,
        output=output_text(outputs) if outputs not in (None, {}) else None,
        attributes=attrs,
        default_step=default_step(name, metadata),
        line=line,
    )


def read(source: HashingFile, bad: BadRecords) -> Iterator[TraceRecord]:
    file = str(source.path)
    for item, line, index in json_items(source, bad, ("runs", "data")):
        try:
            yield read_record(run_record, item, line)
        except BadRecord as exc:
            exc.line, exc.item = line, index
            bad.add(file, exc)


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and ("run_type" in item or "dotted_order" in item or "parent_run_id" in item)
