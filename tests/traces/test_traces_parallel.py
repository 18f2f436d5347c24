"""Reading a large file in worker processes, and grouping its records into units part by part
(``traces.parallel``), gives what one process gives: the same results document, the same
journal bytes, the same errors and ``--skip-bad`` counts. The size thresholds are lowered so
that small inputs are split into many byte ranges; no assertion depends on timing."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reliability_cli.errors import TracesError
from reliability_cli.traces import TraceOptions, parallel, read_traces
from tests.traces import makers

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers are used on Linux only")


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Split every JSON Lines file into ranges of ~2 KB; returns the worker counts used."""
    used: list[int] = []
    real = parallel.spill_file

    def spy(*args: object, **kwargs: object) -> str:
        used.append(args[2])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "GROUP_MIN_ROWS", 0)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(parallel, "BLOCK", 512)
    monkeypatch.setattr(parallel, "spill_file", spy)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    return used


def _run(files: list[Path], out: Path, **options: object) -> tuple[dict, bytes]:
    outcome = read_traces([str(f) for f in files], TraceOptions(out=str(out), **options))  # type: ignore[arg-type]
    packed = outcome.run_dir / "attempts.jsonl.gz"
    journal = gzip.decompress(packed.read_bytes()) if packed.exists() else (packed.with_suffix("")).read_bytes()
    return makers.stable_results(outcome.run_dir), journal


def _both(
    files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object
) -> tuple[tuple[dict, bytes], tuple[dict, bytes]]:
    """(in process, in workers), each in a run directory named ``run``."""
    with monkeypatch.context() as m:
        m.setattr(parallel, "MIN_BYTES", 1 << 62)
        m.setattr(parallel, "GROUP_MIN_ROWS", 1 << 62)
        one = _run(files, tmp_path / "one" / "run", **options)
    return one, _run(files, tmp_path / "many" / "run", **options)


def _with_lines(path: Path, at: dict[int, str]) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    for n in sorted(at, reverse=True):
        lines.insert(n, at[n] + "\n")
    path.write_text("".join(lines))
    return path


def test_workers_give_the_results_and_journal_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    files = [
        makers.write_otlp(tmp_path / "a.jsonl", 30, hex_ids=True),
        makers.write_otlp(tmp_path / "b.jsonl", 30, seed=5),  # base64 ids: the general path
        makers.write_langsmith(tmp_path / "c.jsonl", 20),
    ]
    for f in files[:2]:  # blank lines, and a range made of one
        _with_lines(f, {0: "", 3: "  ", 4: "", 5: ""})
    one, many = _both(files, tmp_path, monkeypatch)
    assert split and all(n == 2 for n in split)
    assert many == one
    assert one[0]["run"]["traces"]["records"] > 0
    # the same file twice: every span a duplicate, found across files as in one process
    one, many = _both([files[0], files[0]], tmp_path / "twice", monkeypatch)
    assert many == one
    assert one[0]["run"]["traces"]["duplicates"] > 0
    # every span of a trace starting at once: their order is the reading order, across ranges
    ties = tmp_path / "ties.jsonl"
    with open(ties, "w") as fh:
        for line in filter(str.strip, files[0].read_text().splitlines()):
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        span["startTimeUnixNano"] = "1700000000000000000"
            fh.write(json.dumps(doc) + "\n")
    one, many = _both([ties], tmp_path / "ties", monkeypatch)
    assert many == one


def test_workers_run_the_pipelines_checks_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(makers.PIPELINE)
    files = [makers.write_otlp(tmp_path / "a.jsonl", 40, hex_ids=True)]
    one, many = _both(files, tmp_path, monkeypatch, pipeline=str(pipeline))
    assert split
    assert many == one
    assert one[0]["run"]["traces"]["checks_judged"] > 0


def test_a_malformed_record_in_a_later_range_is_reported_as_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    path = makers.write_otlp(tmp_path / "a.jsonl", 40, hex_ids=True)
    n = len(path.read_text().splitlines())
    _with_lines(path, {n - 3: '{"resourceSpans": [7]}', n - 1: "not json", n: '{"resourceSpans": 1'})
    errors = []
    for limit in (1 << 62, 0):
        monkeypatch.setattr(parallel, "MIN_BYTES", limit)
        with pytest.raises(TracesError) as info:
            read_traces([str(path)], TraceOptions(out=str(tmp_path / f"strict-{limit}")))
        errors.append((str(info.value), str(info.value.location), info.value.hint))
    assert split
    assert errors[0] == errors[1]
    assert f":{n - 2}" in errors[0][1]  # the first malformed line, numbered from the file's start
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    one, many = _both([path], tmp_path, monkeypatch, skip_bad=True)
    assert many == one
    assert one[0]["run"]["traces"]["bad_records"] == 3


def test_an_overlong_line_is_refused_naming_it_in_process_and_in_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    from reliability_cli.traces import records

    path = makers.write_otlp(tmp_path / "a.jsonl", 40, hex_ids=True)
    lines = path.read_text().splitlines()
    longest = max(len(line) for line in lines) + 1
    n = len(lines)
    _with_lines(path, {n - 2: lines[n - 3][:-1] + " " * longest + "}"})  # a valid document, too long
    monkeypatch.setattr(records, "MAX_TRACE_LINE_BYTES", longest)
    errors = []
    for limit in (1 << 62, 0):
        monkeypatch.setattr(parallel, "MIN_BYTES", limit)
        with pytest.raises(TracesError) as info:
            read_traces([str(path)], TraceOptions(out=str(tmp_path / f"strict-{limit}")))
        errors.append((str(info.value), str(info.value.location)))
    assert split
    assert errors[0] == errors[1]
    assert "line longer than" in errors[0][0] and errors[0][1] == f"{path}:{n - 1}"  # inserted as line n - 1


def test_a_pretty_printed_document_past_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability_cli.traces import records

    path = makers.write_langsmith(tmp_path / "runs.json", 5, as_array=True)  # indented: read whole
    monkeypatch.setattr(records, "MAX_TRACE_LINE_BYTES", path.stat().st_size // 2)
    with pytest.raises(TracesError) as info:
        read_traces([str(path)], TraceOptions(out=str(tmp_path / "run")))
    assert "single JSON document larger than" in str(info.value) and "jq -c" in (info.value.hint or "")
    assert str(info.value.location) == f"{path}:1"
    monkeypatch.setattr(records, "MAX_TRACE_LINE_BYTES", path.stat().st_size)
    assert read_traces([str(path)], TraceOptions(out=str(tmp_path / "run2"))).results.steps


def test_many_malformed_records_keep_the_first_examples_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    path = makers.write_otlp(tmp_path / "a.jsonl", 40, hex_ids=True)
    n = len(path.read_text().splitlines())
    _with_lines(path, {i: f"bad {i}" for i in range(0, n, 2)})
    one, many = _both([path], tmp_path, monkeypatch, skip_bad=True)
    assert many == one
    assert one[0]["run"]["traces"]["bad_records"] > 10
    assert len(one[0]["run"]["traces"]["bad_examples"]) == 10


def test_small_files_and_documents_are_read_in_process(tmp_path: Path) -> None:
    array = makers.write_langsmith(tmp_path / "runs.json", 5, as_array=True)
    lines = makers.write_otlp(tmp_path / "a.jsonl", 5, hex_ids=True)
    assert parallel.workers_for(lines, "otlp") == 0  # below MIN_BYTES
    big = tmp_path / "big.json"
    big.write_text(array.read_text() * 1)
    assert not parallel._starts_with_a_line(array, array.stat().st_size)  # a pretty-printed document
    assert parallel._starts_with_a_line(lines, lines.stat().st_size)
    one_line = tmp_path / "one.jsonl"
    one_line.write_text(json.dumps([json.loads(x) for x in lines.read_text().splitlines()]) + "\n")
    assert not parallel._starts_with_a_line(one_line, one_line.stat().st_size)  # one line: nothing to split


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system")
def test_a_process_pinned_to_one_cpu_reads_in_process(tmp_path):
    """Workers are counted from the CPUs the process may use (taskset, a cpuset), not the machine's."""
    big = tmp_path / "spans.jsonl"
    line = b'{"resourceSpans": []}\n'
    big.write_bytes(line * ((parallel.MIN_BYTES // len(line)) + 1))
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from reliability_cli.traces import parallel\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(parallel.usable_cpus(), parallel.workers_for(Path(sys.argv[1]), 'otlp'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "0"]


CHECKS_MODULE = """\
import asyncio


def is_word(output, context):
    return isinstance(output, str) and output.isalpha()


async def is_short(output, context):
    await asyncio.sleep(0)
    return len(output) < 40
"""


def test_python_checks_run_in_workers_forked_after_the_parent_ran_some(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: list[int]
) -> None:
    """A worker is forked from a process whose daemon threads (sync callables) and helper
    loop (async callables) already exist, and whose checks' event loop is open: none of them
    exists in the child, which must start its own instead of queueing work no thread takes
    (each check would then time out)."""
    from reliability_cli.checks import code

    monkeypatch.setattr(code, "_CHECK_TIMEOUT_S", 20.0)  # a hang fails the test, a pass does not wait
    (tmp_path / "trace_checks_fork.py").write_text(CHECKS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        makers.PIPELINE.replace(
            "      - {type: one-of, value: [billing, tech, other]}\n",
            "      - {type: one-of, value: [billing, tech, other]}\n"
            "      - {type: python, callable: 'trace_checks_fork:is_word'}\n"
            "      - {type: python, callable: 'trace_checks_fork:is_short'}\n",
        )
    )
    assert "trace_checks_fork" in pipeline.read_text()
    small = makers.write_otlp(tmp_path / "small.jsonl", 10, hex_ids=True)
    big = makers.write_otlp(tmp_path / "big.jsonl", 40, seed=3, hex_ids=True)
    real = parallel.workers_for
    monkeypatch.setattr(parallel, "workers_for", lambda path, fmt: 0 if path.name == "small.jsonl" else real(path, fmt))
    # the small file is judged in this process first: its threads and loops are alive at the fork
    one, many = _both([small, big], tmp_path, monkeypatch, pipeline=str(pipeline))
    assert split
    assert many == one
    assert one[0]["run"]["traces"]["checks_judged"] > 0
    assert "did not return" not in json.dumps(many[0]) + many[1].decode()


def test_a_forked_worker_judges_on_an_event_loop_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks' event loop made in the parent shares its selector and wake-up socket with
    any child forked after it: the child makes its own, and the parent's still works after."""
    from reliability_cli.config import load_pipeline
    from reliability_cli.traces.units import TraceChecks

    (tmp_path / "trace_checks_fork.py").write_text(CHECKS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "version: 1\nname: p\nendpoints: {sim: {type: mock, reply: ok}}\nsteps:\n"
        "  - id: answer\n    endpoint: sim\n    prompt: x\n    checks:\n"
        "      - {type: python, callable: 'trace_checks_fork:is_word'}\n"
        "      - {type: python, callable: 'trace_checks_fork:is_short'}\n"
    )
    checks = TraceChecks(load_pipeline(str(pipeline)))
    assert checks.judge("answer", "billing", 1.0, "t", 1, {}) == ("pass", None)
    failed = checks.judge("answer", "no way", 1.0, "t", 1, {})
    assert failed is not None and failed[0] == "fail" and "python" in str(failed[1])
    parents = checks._loop
    pid = os.fork()
    if pid == 0:  # the child: judge, and report whether on a loop of its own
        try:
            verdicts = [checks.judge("answer", text, 1.0, "t", 1, {}) for text in ("tech", "no way")]
            own = checks._loop is not parents and not parents.is_closed()
            os._exit(0 if own and verdicts == [("pass", None), failed] else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert checks._loop is parents
    assert checks.judge("answer", "other", 1.0, "t", 1, {}) == ("pass", None)
    checks.close()
    assert parents.is_closed()
