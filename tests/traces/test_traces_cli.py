"""``relcheck traces`` as a user runs it: pipeline mapping and checks, gates and exit codes,
malformed records, every report format."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.traces import makers


@pytest.fixture
def otlp(tmp_path: Path) -> Path:
    return makers.write_otlp(tmp_path / "spans.jsonl", 50)


def _answers(path: Path) -> list[str]:
    return re.findall(r'\\"content\\":\s*\\"([^\\"]*)\\"', path.read_text())


def test_pipeline_maps_records_to_its_steps_and_runs_its_checks(cli, tmp_path: Path, otlp: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(makers.PIPELINE)
    code, out, err = cli(
        "traces",
        otlp,
        "--pipeline",
        pipeline,
        "--out",
        tmp_path / "run",
        "--sampled",
        "head 10%",
        "--min-step",
        "answer=0.99",
    )
    assert code == 1, err  # the answer gate fails: some recorded answers are not one of the labels
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["run"]["source"] == "traces"
    steps = {s["id"]: s for s in results["steps"]}
    assert list(steps) == ["agent", "classify", "lookup", "search", "answer"]
    wrong = sum(1 for a in _answers(otlp) if a not in ("billing", "tech", "other"))
    assert 0 < wrong < 50
    assert steps["answer"]["failed"] == wrong and steps["answer"]["reached"] == 50
    assert steps["classify"]["reached"] == 50 and steps["classify"]["attempts"] == 50
    assert steps["search"]["errors"] == sum(1 for i in range(50) if i % 7 == 3)
    traces = results["run"]["traces"]
    assert traces["checks_judged"] == 50
    # equals needs expect (traces have no gold): not run; tried only where one-of passed
    assert traces["checks_not_run"] == {"answer: equals": 50 - wrong}
    assert any("head 10%" in n for n in results["run"]["notes"])
    assert "head 10%" in out and "checks ran on 50 recorded outputs" in out.replace("\n", " ")
    gate = next(g for g in results["gates"] if g["name"] == "step:answer")
    assert not gate["passed"]
    assert results["exit_code"] == 1 and results["verdict"] == "fail"


def test_waterfall_counts_survivors_not_step_passes(tmp_path: Path, otlp: Path) -> None:
    from reliability_cli.traces import TraceOptions, read_traces

    results = read_traces([str(otlp)], TraceOptions(out=str(tmp_path / "r"))).results.to_dict()
    alive = results["end_to_end"]["total"]
    for s in results["steps"]:
        lost = sum(1 for u in results["units"] if u["failed_step"] == s["id"])
        alive -= lost
        assert s["survivors"] == alive
        assert s["survivors"] <= s["passed"]
    assert results["steps"][-1]["survivors"] == results["end_to_end"]["passed"]


def test_every_report_format_states_what_traces_cannot_say(cli, tmp_path: Path, otlp: Path) -> None:
    files = {k: tmp_path / f"r.{k}" for k in ("md", "html", "xml", "json")}
    code, out, _ = cli(
        "traces",
        otlp,
        "--out",
        tmp_path / "run",
        "--markdown",
        files["md"],
        "--html",
        files["html"],
        "--junit",
        files["xml"],
        "--json",
        files["json"],
    )
    assert code == 0
    for key in ("md", "html"):
        text = files[key].read_text()
        assert "no gold answers" in text and "Sampling policy not stated" in text
        assert "50 traces" in text
    assert "<testsuite" in files["xml"].read_text()
    assert json.loads(files["json"].read_text())["run"]["source"] == "traces"
    assert "Survival" in out and "note: Traces carry no gold answers" in out


def test_output_flags_never_overwrite_an_input(cli, tmp_path: Path, otlp: Path) -> None:
    before = otlp.read_bytes()
    code, _, err = cli("traces", otlp, "--out", tmp_path / "run", "--json", otlp)
    assert code == 2 and "input file" in err
    assert otlp.read_bytes() == before


def test_malformed_record_exits_2_naming_file_and_line(cli, tmp_path: Path, otlp: Path, monkeypatch) -> None:
    from reliability_cli.cli import common

    monkeypatch.setitem(common.DEBUG, "on", False)  # (an earlier test's --debug would show a traceback)
    lines = otlp.read_text().splitlines()
    lines.insert(2, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "AAAAAAAAAAE=", "name": "x"}]}]}]}')
    lines.insert(4, "{not json")
    otlp.write_text("\n".join(lines) + "\n")
    code, _, err = cli("traces", otlp, "--out", tmp_path / "run")
    assert code == 2
    assert f"{otlp}:3" in err and "traceId" in err and "--skip-bad" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    code, out, err = cli("traces", otlp, "--out", tmp_path / "run2", "--skip-bad")
    assert code == 0, err
    results = json.loads((tmp_path / "run2" / "results.json").read_text())
    assert results["run"]["traces"]["bad_records"] == 2
    assert results["run"]["inputs"][0]["bad_records"] == 2
    assert results["run"]["traces"]["bad_examples"][0].startswith(f"{otlp}:3")
    assert f"{otlp}:5" in results["run"]["traces"]["bad_examples"][1]
    assert "2 malformed records were skipped" in out.replace("\n", " ")


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"id": "r1", "name": "x", "run_type": "llm", "start_time": "yesterday", "trace_id": "t"}', "start_time"),
        ('{"name": "x", "run_type": "llm", "start_time": "2026-01-01T00:00:00Z", "trace_id": "t"}', "id"),
    ],
)
def test_malformed_langsmith_runs(cli, tmp_path: Path, line: str, message: str) -> None:
    path = makers.write_langsmith(tmp_path / "runs.jsonl", 5)
    path.write_text(path.read_text() + line + "\n")
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    n = len(path.read_text().splitlines())
    assert code == 2 and f"{path}:{n}" in err and message in err


_GOOD_SPAN = {
    "traceId": "0af7651916cd43dd8448eb211c80319c",
    "spanId": "b7ad6b7169203331",
    "name": "chat m",
    "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}],
}


@pytest.mark.parametrize(
    "times,message",
    [
        # the file exporter's spelling (the fast path hands it to the general code to name it)
        ({"startTimeUnixNano": "2000000000", "endTimeUnixNano": "1000000000"}, "endTimeUnixNano is before"),
        # 10^23 ns is the year 3,170,843: it reached a datetime and stopped the run as an internal error
        ({"startTimeUnixNano": "1" + "0" * 23, "endTimeUnixNano": "1" + "0" * 23}, "startTimeUnixNano"),
        ({"startTimeUnixNano": 5, "endTimeUnixNano": 2**64}, "endTimeUnixNano"),
        ({"startTimeUnixNano": "-5", "endTimeUnixNano": "7"}, "out of range"),
    ],
)
def test_otlp_times_out_of_order_or_range_are_malformed(cli, tmp_path: Path, times: dict, message: str) -> None:
    path = tmp_path / "spans.jsonl"
    good = {**_GOOD_SPAN, "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000"}
    bad = {**_GOOD_SPAN, "spanId": "b7ad6b7169203332", **times}
    docs = [{"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]} for span in (good, bad)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    assert code == 2 and f"{path}:2" in err and message in err, err
    assert "internal error" not in err and "Traceback" not in err
    code, out, err = cli("traces", path, "--out", tmp_path / "run2", "--skip-bad")
    assert code == 0, err
    results = json.loads((tmp_path / "run2" / "results.json").read_text())
    assert results["run"]["traces"]["bad_records"] == 1
    assert results["steps"][0]["attempts"] == 1 and results["steps"][0]["latency_ms"]["max"] == 1000.0


@pytest.mark.parametrize(
    "start,end,message",
    [
        ("2026-01-01T00:00:05Z", "2026-01-01T00:00:01Z", "end_time is before start_time"),
        (1e300, None, "start_time"),  # epoch seconds far past 2554
        ("0001-01-01T00:00:00Z", None, "out of range"),
    ],
)
def test_langsmith_times_out_of_order_or_range_are_malformed(cli, tmp_path: Path, start, end, message: str) -> None:
    path = makers.write_langsmith(tmp_path / "runs.jsonl", 3)
    run = {"id": "r9", "name": "x", "run_type": "llm", "trace_id": "t9", "start_time": start}
    if end is not None:
        run["end_time"] = end
    path.write_text(path.read_text() + json.dumps(run) + "\n")
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    n = len(path.read_text().splitlines())
    assert code == 2 and f"{path}:{n}" in err and message in err, err
    assert "internal error" not in err


def test_langfuse_observation_ending_before_it_starts_is_malformed(cli, tmp_path: Path) -> None:
    path = makers.write_langfuse(tmp_path / "obs.jsonl", 3)
    obs = {
        "id": "o9",
        "traceId": "t9",
        "type": "GENERATION",
        "name": "x",
        "startTime": "2026-01-01T00:00:05.000Z",
        "endTime": "2026-01-01T00:00:04.999Z",
    }
    path.write_text(path.read_text() + json.dumps(obs) + "\n")
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    n = len(path.read_text().splitlines())
    assert code == 2 and f"{path}:{n}" in err and "endTime is before startTime" in err, err


@pytest.mark.parametrize("levels", [990, 100_000])
def test_values_nested_past_the_stack_are_malformed_records(cli, tmp_path: Path, levels: int) -> None:
    # 990 levels parse (orjson reads up to 1,024) but overflowed the stack while the record
    # was read; 100,000 overflowed the parser itself. Either was an internal error.
    deep = "[" * levels + '"x"' + "]" * levels
    run = (
        '{"id": "r1", "trace_id": "t1", "name": "llm", "run_type": "llm", "start_time": '
        f'"2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:01Z", "outputs": {{"o": {deep}}}}}'
    )
    path = makers.write_langsmith(tmp_path / "runs.jsonl", 3)
    path.write_text(path.read_text() + run + "\n")
    n = len(path.read_text().splitlines())
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    assert code == 2 and f"{path}:{n}" in err and "nested too deeply" in err, err
    assert "internal error" not in err
    code, _, err = cli("traces", path, "--out", tmp_path / "run2", "--skip-bad")
    assert code == 0, err
    assert json.loads((tmp_path / "run2" / "results.json").read_text())["run"]["traces"]["bad_records"] == 1


def test_malformed_langfuse_csv_row(cli, tmp_path: Path) -> None:
    path = makers.write_langfuse(tmp_path / "obs.csv", 4, csv_format=True)
    header = path.read_text().splitlines()[0].split(",")
    row = ["" for _ in header]
    row[header.index("id")] = "x1"
    row[header.index("type")] = "SPAN"
    row[header.index("traceId")] = "t1"
    row[header.index("startTime")] = "not a time"
    path.write_text(path.read_text() + ",".join(row) + "\n")
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    n = len(path.read_text().splitlines())
    assert code == 2 and f"{path}:{n}" in err and "startTime" in err


def test_langfuse_csv_with_an_output_longer_than_csvs_field_limit(cli, tmp_path: Path) -> None:
    # csv stops at 128 KiB a field by default: a long model output was an internal error
    path = makers.write_langfuse(tmp_path / "obs.csv", 4, csv_format=True)
    header = path.read_text().splitlines()[0].split(",")
    assert "output" in header
    row = ["" for _ in header]
    for key, value in {
        "id": "x1",
        "type": "GENERATION",
        "name": "long",
        "traceId": "t-long",
        "startTime": "2026-01-01T00:00:00Z",
        "endTime": "2026-01-01T00:00:02Z",
        "output": '"' + "y" * 200_000 + '"',
    }.items():
        row[header.index(key)] = value
    path.write_text(path.read_text() + ",".join(row) + "\n")
    code, _, err = cli("traces", path, "--out", tmp_path / "run")
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (long,) = [s for s in results["steps"] if s["id"] == "generation long"]
    assert long["attempts"] == 1 and long["latency_ms"]["max"] == 2000.0
    assert results["run"]["traces"]["bad_records"] == 0


def test_format_is_detected_or_refused(cli, tmp_path: Path) -> None:
    other = tmp_path / "x.jsonl"
    other.write_text('{"hello": 1}\n')
    code, _, err = cli("traces", other, "--out", tmp_path / "run")
    assert code == 2 and "--format" in err
    code, _, err = cli("traces", tmp_path / "missing.jsonl")
    assert code == 2 and "no such trace file" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_directory_is_refused_before_it_is_read(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "spans.jsonl"
    os.mkfifo(fifo)  # opening it would block until a writer came
    code, _, err = cli("traces", fifo, "--out", tmp_path / "run")
    assert code == 2 and "is a FIFO (named pipe), not a regular file" in err and str(fifo) in err
    code, _, err = cli("traces", tmp_path, "--out", tmp_path / "run")
    assert code == 2 and "is a directory" in err


def test_pipeline_traces_section_is_validated(cli, tmp_path: Path, otlp: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        makers.PIPELINE.replace("  lookup: {match:", "  lokup: {match:").replace('regex: "^chat "', 'regex: "("')
    )
    code, _, err = cli("validate", bad)
    assert code == 2
    assert "traces: names unknown step 'lokup'" in err and "invalid regex" in err
    assert re.search(r"p\.yaml:\d+", err)
    none = tmp_path / "none.yaml"
    none.write_text(makers.PIPELINE.split("traces:")[0])
    code, _, err = cli("traces", otlp, "--pipeline", none, "--out", tmp_path / "run")
    assert code == 2 and "no traces: section" in err


def test_eval_versus_production_unpaired(cli, tmp_path: Path, otlp: Path) -> None:
    """An eval that passes everything over-estimates production's tool step significantly."""
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(makers.PIPELINE)
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "".join(json.dumps({"id": f"c{i}", "vars": {}, "expect": {"answer": "ok"}}) + "\n" for i in range(300))
    )
    evalp = tmp_path / "eval.yaml"
    evalp.write_text(
        makers.PIPELINE.split("traces:")[0].replace("      - {type: one-of, value: [billing, tech, other]}\n", "")
    )
    code, _, err = cli("eval", evalp, "--evalset", cases, "--out", tmp_path / "ev", "-q")
    assert code == 0, err
    code, _, err = cli("traces", otlp, "--pipeline", pipeline, "--out", tmp_path / "tr", "-q")
    assert code == 0, err
    code, out, _ = cli("compare", tmp_path / "ev", tmp_path / "tr", "--unpaired", "--json", tmp_path / "c.json")
    doc = json.loads((tmp_path / "c.json").read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {"end_to_end", "step:agent", "step:classify", "step:lookup", "step:search", "step:answer"}
    assert rows["step:agent"]["estimate"] == "agrees" and rows["step:agent"]["delta"] == 0
    assert rows["end_to_end"]["estimate"] == "over" and rows["end_to_end"]["regressed"]
    assert code == 1 and "overestimates" in out
    code, _, err = cli("compare", tmp_path / "ev", tmp_path / "tr")
    assert code == 2 and "shares no unit" in err  # paired compare refuses; --unpaired is the way


def test_no_step_in_any_trace_is_no_verdict(cli, tmp_path: Path) -> None:
    path = makers.write_otlp(tmp_path / "spans.jsonl", 5)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(makers.PIPELINE.split("traces:")[0] + "traces:\n  agent: {match: {name: nothing-matches}}\n")
    code, _, _ = cli("traces", path, "--pipeline", pipeline, "--out", tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert code == 3 and results["verdict"] == "error" and results["end_to_end"]["total"] == 0
    assert results["run"]["traces"]["not_steps"] == results["run"]["traces"]["records"] > 0


def test_a_pipeline_baseline_gate_is_not_applied_to_traces(cli, tmp_path: Path, otlp: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(makers.PIPELINE.replace("traces:", "gates:\n  baseline: {path: base.json}\ntraces:", 1))
    code, _, err = cli("traces", otlp, "--pipeline", pipeline, "--out", tmp_path / "run")
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert not any(g["name"].startswith("baseline") for g in results["gates"])
    assert any("baseline gate" in n for n in results["run"]["notes"])
