"""Hostile input files: exit 2 with a location, never a crash, a hang or a flood of memory
(issue 10, items 13 and 14). The small ones are files in ``tests/corpus/hostile``; the large
and the special ones (FIFOs, devices) are made here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reliability_cli.config import yamlpos
from reliability_cli.errors import ConfigError, EvalSetError

from ..helpers import ROOT

CORPUS = ROOT / "tests" / "corpus"
HOSTILE = CORPUS / "hostile"
GOOD_PIPELINE = CORPUS / "good_pipeline.yaml"
GOOD_EVALSET = CORPUS / "evalsets" / "good.jsonl"

# file → (fragment of the message, line or None)
EVALSETS = {
    "alias_doubling_evalset.yaml": ("YAML aliases expand to more than 100,000 extra keys and values", None),
    "billion_laughs_evalset.yaml": ("YAML aliases expand to more than 100,000 extra keys and values", None),
    "recursive_alias_evalset.yaml": ("a recursive YAML alias", 3),
    "nul_byte_evalset.yaml": ("a control character (NUL)", 3),
    "duplicate_key.jsonl": ('duplicate key "q"', 2),
    "duplicate_key.json": ('duplicate key "id"', 2),
    "duplicate_nested_key.json": ('duplicate key "q"', 5),
    "duplicate_column.csv": ("duplicate CSV column 'vars.q'", 1),
    "long_int.jsonl": ("a number longer than 4300 digits", 1),
    "long_int_evalset.yaml": ("a number of 5,000 digits", 3),
}
PIPELINES = {
    "billion_laughs_pipeline.yaml": ("YAML aliases expand to more than 100,000 extra keys and values", None),
    "merge_key_bomb_pipeline.yaml": ("YAML aliases expand to more than 100,000 extra keys and values", None),
}


def relcheck(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A real subprocess, so a file that blocks or floods memory fails the test by timeout
    instead of hanging the test run."""
    return subprocess.run(
        [sys.executable, "-m", "reliability_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def assert_refused(code: int, err: str, path: Path | str, fragment: str, line: int | None) -> None:
    assert code == 2, err
    assert fragment in err, err
    assert str(path) in err
    if line is not None:
        assert re.search(rf"{re.escape(str(path))}:{line}\b", err), err
    assert "Traceback" not in err and "internal error" not in err


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request, monkeypatch):
    """Both YAML paths enforce the budgets: libyaml's (when PyYAML has it) and PyYAML's own."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("PyYAML without libyaml")
        monkeypatch.setattr(yamlpos, "_LOADER", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(yamlpos, "_LOADER", yamlpos._DepthBoundedSafeLoader)
    return request.param


@pytest.mark.parametrize("name", sorted(EVALSETS))
def test_hostile_evalset_file(cli, yaml_parser, name):
    fragment, line = EVALSETS[name]
    path = HOSTILE / name
    code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", path)
    assert_refused(code, err, path, fragment, line)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_hostile_pipeline_file(cli, yaml_parser, name):
    fragment, line = PIPELINES[name]
    path = HOSTILE / name
    code, out, err = cli("validate", path, "--evalset", GOOD_EVALSET)
    assert_refused(code, err, path, fragment, line)


def test_alias_budget_allows_ordinary_anchors(cli, yaml_parser, tmp_path):
    """The budget bites on bombs, not on the usual shared defaults: 2,000 cases each aliasing
    one shared mapping of 20 keys (about 82,000 keys and values added by aliases) load."""
    shared = "{q: hi, " + ", ".join(f"k{i}: v{i}" for i in range(19)) + "}"
    text = f"- id: c0\n  vars: &shared {shared}\n  expect: {{a: x}}\n" + "".join(
        f"- id: c{i}\n  vars: *shared\n  expect: {{a: x}}\n" for i in range(1, 2000)
    )
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", path)
    assert code == 0, err


def test_alias_bomb_is_refused_before_expansion():
    """The budget is checked on the composed node graph, before any value is built: the
    bomb's (9^10 values) refusal does not depend on time or memory spent expanding it."""
    calls = {"n": 0}
    real = yamlpos.data_scalar

    def counting(text: str):
        calls["n"] += 1
        return real(text)

    text = (HOSTILE / "billion_laughs_evalset.yaml").read_text()
    yamlpos.data_scalar = counting
    try:
        with pytest.raises(EvalSetError, match="alias"):
            yamlpos.load_yaml(text, "x.yaml", error=EvalSetError, data_scalars=True)
    finally:
        yamlpos.data_scalar = real
    assert calls["n"] == 0


def test_yaml_nested_600_levels(cli, yaml_parser, tmp_path):
    for name, text in {
        "flow.yaml": "- id: c0\n  vars: {q: " + "[" * 600 + "]" * 600 + "}\n",
        "block.yaml": "- id: c0\n  vars:\n"
        + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(600))
        + "  " * 602
        + "x\n",
    }.items():
        path = tmp_path / name
        path.write_text(text)
        code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", path)
        assert_refused(code, err, path, "nested deeper than 100 levels", None)
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(GOOD_PIPELINE.read_text() + "x: " + "[" * 600 + "]" * 600 + "\n")
    code, out, err = cli("validate", pipeline, "--evalset", GOOD_EVALSET)
    assert_refused(code, err, pipeline, "nested deeper than 100 levels", 11)


def test_json_nested_100000_levels(cli, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text('{"id": "c0"}\n{"id": "c1", "vars": {"q": ' + deep + "}}\n")
    code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", jsonl)
    assert_refused(code, err, jsonl, "nested deeper than 100 levels", 2)
    whole = tmp_path / "deep.json"
    whole.write_text('[{"id": "c0", "vars": {"q": ' + deep + "}}]")
    code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", whole)
    assert_refused(code, err, whole, "nested deeper than 100 levels", None)
    moderate = tmp_path / "moderate.jsonl"  # past the budget but inside Python's recursion limit
    moderate.write_text('{"id": "c0", "vars": {"q": ' + "[" * 150 + "]" * 150 + "}}\n")
    code, out, err = cli("validate", GOOD_PIPELINE, "--evalset", moderate)
    assert_refused(code, err, moderate, "nested deeper than 100 levels", 1)


@pytest.mark.parametrize("suffix", [".jsonl", ".yaml", ".json", ".csv"])
def test_a_symlink_to_dev_zero_as_an_evalset_is_refused_unread(tmp_path, suffix):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    path = tmp_path / f"zero{suffix}"
    os.symlink("/dev/zero", path)
    try:
        proc = relcheck("validate", GOOD_PIPELINE, "--evalset", path)
    finally:
        path.unlink()  # nothing after the test may read it by accident
    assert_refused(proc.returncode, proc.stderr, path, "is a character device, not a regular file", None)


def test_dev_zero_itself_as_an_evalset_is_refused_unread():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    proc = relcheck("validate", GOOD_PIPELINE, "--evalset", "/dev/zero")
    assert_refused(proc.returncode, proc.stderr, "/dev/zero", "unknown eval set format '(none)'", None)


def test_dev_zero_as_a_pipeline_is_refused_unread():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    proc = relcheck("validate", "/dev/zero", "--evalset", GOOD_EVALSET)
    assert_refused(proc.returncode, proc.stderr, "/dev/zero", "not a regular file", None)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("role", ["pipeline", "evalset.jsonl", "evalset.yaml", "evalset.txt"])
def test_a_fifo_never_blocks(tmp_path, role):
    """No writer ever opens these FIFOs: opening one for reading would block forever."""
    fifo = tmp_path / ("pipeline.yaml" if role == "pipeline" else role.replace("evalset", "cases"))
    os.mkfifo(fifo)
    if role == "pipeline":
        proc = relcheck("validate", fifo, "--evalset", GOOD_EVALSET)
        assert_refused(proc.returncode, proc.stderr, fifo, "is a FIFO (named pipe), not a regular file", None)
    elif role == "evalset.txt":  # the extension is checked before anything is opened
        proc = relcheck("validate", GOOD_PIPELINE, "--evalset", fifo)
        assert_refused(proc.returncode, proc.stderr, fifo, "unknown eval set format '.txt'", None)
    else:
        proc = relcheck("validate", GOOD_PIPELINE, "--evalset", fifo)
        assert_refused(proc.returncode, proc.stderr, fifo, "is a FIFO (named pipe), not a regular file", None)


def test_unknown_extension_is_refused_before_reading(tmp_path, monkeypatch):
    from reliability_cli.config import evalset

    path = tmp_path / "cases.txt"
    path.write_text('{"id": "c0"}\n')
    opened: list[object] = []
    monkeypatch.setattr(evalset, "open_regular", lambda *a, **k: opened.append(a))
    monkeypatch.setattr(evalset, "read_regular", lambda *a, **k: opened.append(a))
    with pytest.raises(EvalSetError, match="unknown eval set format"):
        list(evalset.iter_evalsets([path]))
    assert opened == []


def test_size_budgets(tmp_path, monkeypatch):
    """A file read whole past its budget is refused after reading at most budget+1 bytes, and
    a streamed line without an end is refused at the line budget."""
    from reliability_cli.config import evalset, limits
    from reliability_cli.config.pipeline import load_pipeline

    monkeypatch.setattr(evalset, "MAX_WHOLE_EVALSET_BYTES", 1024)
    big = tmp_path / "big.yaml"
    big.write_text("- id: c0\n  vars: {q: '" + "x" * 2000 + "'}\n")
    with pytest.raises(EvalSetError, match="larger than"):
        list(evalset.iter_evalsets([big]))
    monkeypatch.setattr(limits, "MAX_LINE_BYTES", 1024)
    monkeypatch.setattr(evalset, "bounded_lines", lambda fh, file, error: limits.bounded_lines(fh, file, error, 1024))
    line = tmp_path / "line.jsonl"
    line.write_text('{"id": "c0"}\n{"id": "c1", "vars": {"q": "' + "x" * 5000)
    with pytest.raises(EvalSetError, match="line longer than") as info:
        list(evalset.iter_evalsets([line]))
    assert info.value.location.line == 2
    monkeypatch.setattr(limits, "MAX_PIPELINE_BYTES", 64)
    with pytest.raises(ConfigError, match="larger than"):
        load_pipeline(GOOD_PIPELINE)
