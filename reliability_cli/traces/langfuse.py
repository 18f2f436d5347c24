"""Langfuse observations: JSON, JSON Lines or CSV, from the public API or the blob export,
with camelCase (``parentObservationId``, ``statusMessage``, ``usageDetails``) or snake_case
keys (``parent_observation_id`` …)."""

from __future__ import annotations

import csv
import json
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

POINT_TYPES = ("EVENT",)  # a point in time, not a step


def _get(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def _tokens(obs: Mapping[str, Any], which: str) -> int:
    usage = _get(obs, "usageDetails", "usage_details") or obs.get("usage") or {}
    if isinstance(usage, dict):
        for key in (
            (which, f"{which}_tokens", "prompt_tokens", "promptTokens")
            if which == "input"
            else (which, f"{which}_tokens", "completion_tokens", "completionTokens")
        ):
            if usage.get(key) is not None:
                return as_int(usage[key])
    return as_int(
        _get(obs, "promptTokens", "prompt_tokens")
        if which == "input"
        else _get(obs, "completionTokens", "completion_tokens")
    )


def observation_record(obs: Any, line: int | None) -> TraceRecord:
    if not isinstance(obs, dict):
        raise BadRecord("an observation must be an object")
    obs_id = obs.get("id")
    if not isinstance(obs_id, str) or not obs_id:
        raise BadRecord("id: missing or not a string")
    trace = _get(obs, "traceId", "trace_id")
    if not isinstance(trace, str) or not trace:
        raise BadRecord("traceId: missing or not a string")
    kind = obs.get("type")
    if not isinstance(kind, str):
        raise BadRecord("type: missing or not a string")
    name = obs.get("name") or ""
    start = parse_time(_get(obs, "startTime", "start_time"), "startTime")
    end_raw = _get(obs, "endTime", "end_time")
    end = parse_time(end_raw, "endTime") if end_raw else None
    check_order(start, end, "startTime", "endTime")
    metadata = obs.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {"value": metadata}
    level = obs.get("level")
    errored = level == "ERROR"
    message = _get(obs, "statusMessage", "status_message") or None
    err_kind = error_kind(metadata.get("error.type") or metadata.get("exception.type"), message) if errored else None
    call = metadata.get("tool_call_id") or metadata.get("gen_ai.tool.call.id")
    attrs = {
        **{f"metadata.{k}": v for k, v in metadata.items()},
        "type": kind,
        "model": obs.get("model"),
        "level": level,
    }
    output = obs.get("output")
    return TraceRecord(
        trace=trace,
        id=obs_id,
        parent=_get(obs, "parentObservationId", "parent_observation_id") or None,
        name=str(name),
        kind=kind,
        start=start,
        end=end,
        error=errored,
        error_kind=err_kind,
        reason=(str(message) if message else err_kind) if errored else None,
        tokens_in=_tokens(obs, "input"),
        tokens_out=_tokens(obs, "output"),
        call_id=str(call) if call is not None else None,
        output=output_text(output) if output is not None else None,
        attributes=attrs,
        default_step=None if kind in POINT_TYPES else f"{kind.lower()} {name}".strip(),
        line=line,
    )


def read(source: HashingFile, bad: BadRecords) -> Iterator[TraceRecord]:
    file = str(source.path)
    if source.path.suffix.lower() == ".csv":
        yield from _read_csv(source, bad)
        return
    for item, line, index in json_items(source, bad, ("data", "observations")):
        try:
            yield read_record(observation_record, item, line)
        except BadRecord as exc:
            exc.line, exc.item = line, index
            bad.add(file, exc)


_JSON_COLUMNS = (
    "metadata",
    "usageDetails",
    "usage_details",
    "usage",
    "output",
    "input",
    "costDetails",
    "cost_details",
    "modelParameters",
    "model_parameters",
)


#: the longest CSV field read (2 GiB - 1: csv's limit is a C long)
CSV_FIELD_LIMIT = 2**31 - 1


def _read_csv(source: HashingFile, bad: BadRecords) -> Iterator[TraceRecord]:
    """The blob export's CSV: one observation a row; nested values are JSON text."""
    file = str(source.path)
    # csv's own cap on a field (128 KiB) is below a long model output; a row is held whole
    # anyway, so the cap protects nothing here (raised for the process, never lowered)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.DictReader(raw.decode("utf-8-sig", errors="replace") for _, raw in source.lines())
    start_line = 2
    rows = iter(reader)
    while True:
        line = start_line
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            start_line = reader.line_num + 1
            bad.add(file, BadRecord(f"not a valid CSV row ({exc})", line=line))
            continue
        start_line = reader.line_num + 1
        try:
            obs: dict[str, Any] = {}
            for key, value in row.items():
                if key is None:
                    raise BadRecord("more fields than the header names")
                if value is None or value == "":
                    continue
                if key in _JSON_COLUMNS and value[:1] in ("{", "[", '"'):
                    try:
                        obs[key] = json.loads(value)
                    except (ValueError, RecursionError):
                        raise BadRecord(f"{key}: not valid JSON") from None
                else:
                    obs[key] = value
            yield read_record(observation_record, obs, line)
        except BadRecord as exc:
            exc.line = line
            bad.add(file, exc)


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and (
        "type" in item
        and ("traceId" in item or "trace_id" in item)
        or "parentObservationId" in item
        or "parent_observation_id" in item
    )
