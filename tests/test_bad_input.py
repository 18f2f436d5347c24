"""A corpus of broken pipelines and eval sets: each gives exit 2, names the place, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
PIPELINES = sorted((CORPUS / "pipelines").glob("*.yaml"))
EVALSETS = json.loads((CORPUS / "evalsets" / "expected.json").read_text())


def _expectations(path: Path) -> tuple[str, int | None]:
    lines = path.read_text().splitlines()
    fragment = lines[0].removeprefix("# expect: ")
    line = lines[1].removeprefix("# line: ")
    return fragment, None if line == "-" else int(line)


def test_corpus_is_large_enough():
    assert len(PIPELINES) + len(EVALSETS) >= 25


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_broken_pipeline(cli, path, monkeypatch):
    monkeypatch.delenv("RELCHECK_TEST_UNSET_VAR", raising=False)
    fragment, line = _expectations(path)
    code, out, err = cli("validate", path, "--evalset", CORPUS / "evalsets" / "good.jsonl")
    assert code == 2, err
    assert fragment in err
    assert str(path) in err
    if line is not None:
        assert re.search(rf"{re.escape(str(path))}:{line}(:\d+)?", err), err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("name", sorted(EVALSETS))
def test_broken_evalset(cli, name):
    spec = EVALSETS[name]
    path = CORPUS / "evalsets" / name
    code, out, err = cli("validate", CORPUS / "good_pipeline.yaml", "--evalset", path)
    assert code == 2, err
    assert spec["expect"] in err
    assert str(path) in err
    if spec["line"] is not None:
        assert f"{path}:{spec['line']}" in err, err
    assert "Traceback" not in err + out


def test_debug_shows_traceback(cli):
    code, _, err = cli("--debug", "validate", CORPUS / "pipelines" / "unknown_top_key.yaml")
    assert code == 2
    assert "Traceback" in err


def test_missing_pipeline_file(cli):
    code, _, err = cli("eval", "no/such/pipeline.yaml")
    assert code == 2
    assert "no/such/pipeline.yaml" in err and "no such file" in err
