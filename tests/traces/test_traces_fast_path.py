"""The fast paths of ``relcheck traces`` (issue #17's streaming target) give exactly what the
general code gives: the OTLP reader's inline case, ``orjson`` against the stdlib's ``json``,
journal lines from templates against ``json``'s encoder, and the analysis fed in process
against the analysis reading the journal back. No assertion depends on timing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reliability_cli.traces import TraceOptions, otlp, read_traces, records
from tests.traces import makers


def _spans(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                out.extend(ss["spans"])
    return out


def _variants(span: dict) -> list[dict]:
    """The span, and versions of it the inline path must leave to the general one (or read
    the same way)."""
    out = [span]
    for change in (
        lambda s: s.update(traceId=s["traceId"].upper()),
        lambda s: s.update(spanId=s["spanId"][:8] + " " + s["spanId"][9:]),  # fromhex skips spaces
        lambda s: s.update(parentSpanId=""),
        lambda s: s.update(startTimeUnixNano=int(s["startTimeUnixNano"])),
        lambda s: s.update(endTimeUnixNano="0"),
        lambda s: s.update(endTimeUnixNano="12x"),
        lambda s: s.update(status={"code": "STATUS_CODE_ERROR", "message": "ValueError('x')"}),
        lambda s: s.update(status=None),
        lambda s: s.update(events=[{"name": "exception", "attributes": []}]),
        lambda s: s["attributes"].append({"key": "n", "value": {"intValue": "7", "doubleValue": 1.5}}),
        lambda s: s["attributes"].append({"key": "n", "value": {"stringValue": None, "intValue": "7"}}),
        lambda s: s["attributes"].append({"key": "x", "value": {"arrayValue": {"values": [{"intValue": 1}]}}}),
        lambda s: s["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": 3.0}}),
        lambda s: s["attributes"].append({"key": "gen_ai.output.messages", "value": {"stringValue": '["hi"]'}}),
        lambda s: s["attributes"].append({"key": "gen_ai.completion.0.content", "value": {"stringValue": "a"}}),
        lambda s: s["attributes"].append({"value": {"stringValue": "no key"}}),
        lambda s: s["attributes"].insert(0, {"key": "gen_ai.operation.name", "value": {}}),  # present, None
        lambda s: (
            s["attributes"].append({"key": "error.type", "value": {"boolValue": False}}),
            s.update(status={"code": 2, "message": "TimeoutError: late"}),
        ),
        lambda s: s.update(status={"code": 2}),
    ):
        changed = copy.deepcopy(span)
        change(changed)
        out.append(changed)
    return out


def _general(span: dict) -> object:
    try:
        return otlp._general_record(span, 3)
    except records.BadRecord as exc:
        return ("bad", exc.message)


def test_inline_otlp_path_reads_every_span_as_the_general_path(tmp_path: Path) -> None:
    path = makers.write_otlp(tmp_path / "hex.jsonl", 12, hex_ids=True)
    inline = 0
    for span in _spans(path):
        for variant in _variants(span):
            found = otlp._plain_record(variant, 3)
            if found is not None:
                inline += 1
                assert found == _general(variant)
                assert type(found) is records.TraceRecord
            assert (found if found is not None else _general(variant)) == _general(variant)
            try:
                assert otlp.span_record(variant, 3) == _general(variant)
            except records.BadRecord as exc:
                assert _general(variant) == ("bad", exc.message)
    assert inline >= len(_spans(path))  # the exporter's own spans take the inline path


def test_orjson_and_stdlib_json_give_the_same_values_and_errors(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("orjson")
    for text in (
        b'{"a": 1, "b": [1.5, "\\u00e9", null, true]}',
        b'{"a": NaN}',  # json accepts, orjson refuses: the fallback reads it
        b'{"big": [18446744073709551615, -9223372036854775808]}',  # (orjson reads wider integers as floats)
        b'{"s": "\\ud800"}',  # a lone surrogate
    ):
        value = records._fast_loads(text)
        assert repr(value) == repr(json.loads(text))
    for bad in (b'{"a": 1', b"[1,]", b"\xff"):
        with pytest.raises(ValueError) as fast:
            records._fast_loads(bad)
        with pytest.raises(ValueError) as plain:
            json.loads(bad)
        assert str(fast.value) == str(plain.value)
    # a whole run: the same results either way
    path = makers.write_otlp(tmp_path / "spans.jsonl", 20)
    with_orjson = read_traces([str(path)], TraceOptions(out=str(tmp_path / "a")))
    monkeypatch.setattr(records, "loads", records._json_loads)
    stdlib = read_traces([str(path)], TraceOptions(out=str(tmp_path / "b")))
    assert with_orjson.results.steps == stdlib.results.steps
    assert makers.stable_results(tmp_path / "a") == makers.stable_results(tmp_path / "b")


def _runs(tmp_path: Path) -> list[tuple[list[Path], dict]]:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(makers.PIPELINE)
    otlp_file = makers.write_otlp(tmp_path / "spans.jsonl", 30)
    return [
        ([otlp_file], {}),
        ([otlp_file], {"pipeline": str(pipeline)}),  # checks ran: fail outcomes with reasons
        ([makers.write_langsmith(tmp_path / "runs.jsonl", 20)], {}),
        ([makers.write_langfuse(tmp_path / "obs.csv", 20, csv_format=True)], {}),
    ]


def test_journal_lines_are_what_the_json_encoder_writes(tmp_path: Path) -> None:
    encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
    kinds: set[str] = set()
    for i, (files, kw) in enumerate(_runs(tmp_path)):
        out = tmp_path / f"run{i}"
        read_traces([str(f) for f in files], TraceOptions(out=str(out), **kw))
        lines = (out / "attempts.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) > 20
        for line in lines:
            assert line == encode(json.loads(line))
            kinds.add(json.loads(line).get("outcome", "unit_done" if "unit_done" in line else "header"))
    assert {"pass", "error", "fail", "unit_done", "header"} <= kinds


def test_analysis_fed_in_process_equals_the_analysis_of_the_journal(tmp_path: Path, monkeypatch) -> None:
    from reliability_cli.journal import read_lines
    from reliability_cli.results import analysis

    aggregate = analysis.aggregate
    journal: list[Path] = []

    def from_the_journal(records_, step_ids, **kw):  # the former way: write it all, then read it back
        for _ in records_:
            pass
        return aggregate(read_lines(journal[-1]), step_ids, **kw)

    for i, (files, kw) in enumerate(_runs(tmp_path)):
        direct, reread = tmp_path / f"direct{i}", tmp_path / f"reread{i}"
        read_traces([str(f) for f in files], TraceOptions(out=str(direct), **kw))
        journal.append(reread / "attempts.jsonl")
        monkeypatch.setattr(analysis, "aggregate", from_the_journal)
        read_traces([str(f) for f in files], TraceOptions(out=str(reread), **kw))
        monkeypatch.setattr(analysis, "aggregate", aggregate)
        assert makers.stable_results(direct) == makers.stable_results(reread)
