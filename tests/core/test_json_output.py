"""``--json FILE`` copies the run's ``results.json`` instead of serialising the results a
second time (issue 11, item 8: 100,000 six-step cases peaked at twice the memory with it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import SIX


@pytest.fixture
def dumps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the serialisations of a results document (``results.schema.dump``)."""
    from reliability_cli.results import schema

    calls: list[int] = []
    real = schema.dump

    def counting(results, fh):  # type: ignore[no-untyped-def]
        calls.append(len(results.units))
        real(results, fh)

    monkeypatch.setattr(schema, "dump", counting)
    return calls


def _invoke(*args: object) -> tuple[int, bytes, str]:
    from reliability_cli.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def test_json_file_is_the_run_file_byte_for_byte_serialised_once(tmp_path: Path, dumps: list[int]) -> None:
    out = tmp_path / "copy" / "results.copy.json"
    code, _, err = _invoke("eval", SIX, "--out", tmp_path / "r", "--limit", "60", "--json", out, "--no-progress")
    assert code == 0, err
    assert out.read_bytes() == (tmp_path / "r" / "results.json").read_bytes()
    assert dumps == [60]  # results.json only: --json did not serialise the results again
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left


def test_json_stdout_is_the_run_file_byte_for_byte_serialised_once(tmp_path: Path, dumps: list[int]) -> None:
    code, out, err = _invoke("eval", SIX, "--out", tmp_path / "r", "--limit", "30", "--json", "-", "--no-progress")
    assert code == 0, err
    assert out == (tmp_path / "r" / "results.json").read_bytes()
    assert dumps == [30]


def test_json_file_replaces_an_existing_file_atomically(tmp_path: Path, dumps: list[int]) -> None:
    out = tmp_path / "old.json"
    out.write_text("old contents")
    os.chmod(out, 0o644)
    code, _, err = _invoke("eval", SIX, "--out", tmp_path / "r", "--limit", "20", "--json", out, "--no-progress")
    assert code == 0, err
    assert json.loads(out.read_text())["end_to_end"]["total"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "r"]


def test_json_still_refuses_to_overwrite_a_run_file(tmp_path: Path) -> None:
    _invoke("eval", SIX, "--out", tmp_path / "a", "--limit", "5", "--no-progress")
    before = (tmp_path / "a" / "results.json").read_bytes()
    code, _, err = _invoke(
        "eval", SIX, "--out", tmp_path / "b", "--limit", "5", "--json", tmp_path / "a" / "results.json"
    )
    assert code == 2 and "would overwrite the run file results.json" in err
    assert (tmp_path / "a" / "results.json").read_bytes() == before


def test_report_json_streams_the_document(tmp_path: Path, dumps: list[int]) -> None:
    _invoke("eval", SIX, "--out", tmp_path / "r", "--limit", "25", "--no-progress")
    dumps.clear()
    code, _, err = _invoke("report", tmp_path / "r", "--format", "json", "-o", tmp_path / "again.json")
    assert code == 0, err
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "r" / "results.json").read_bytes()
    assert dumps == [25]
    code, out, _ = _invoke("report", tmp_path / "r", "--format", "json")
    assert code == 0 and out == (tmp_path / "r" / "results.json").read_bytes()


def test_merge_to_stdout_streams_the_document(tmp_path: Path, dumps: list[int]) -> None:
    for i in (1, 2):
        _invoke("eval", SIX, "--out", tmp_path / f"s{i}", "--limit", "20", "--shard", f"{i}/2", "--no-progress")
    code, _, err = _invoke("merge", tmp_path / "s1", tmp_path / "s2", "-o", tmp_path / "merged.json", "-q")
    assert code == 0, err
    dumps.clear()
    code, out, err = _invoke("merge", tmp_path / "s1", tmp_path / "s2", "-o", "-")
    assert code == 0, err
    assert len(dumps) == 1
    assert out == (tmp_path / "merged.json").read_bytes()


def test_a_symlink_or_a_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    """The atomic rename is for regular files: renaming over a symlink would replace the
    link, and over a device (as root, ``/dev/full``) the device itself."""
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    code, _, err = _invoke("eval", SIX, "--out", tmp_path / "r", "--limit", "5", "--json", link, "--no-progress")
    assert code == 0, err
    assert link.is_symlink() and real.read_bytes() == (tmp_path / "r" / "results.json").read_bytes()
    for i in (1, 2):
        _invoke("eval", SIX, "--out", tmp_path / f"s{i}", "--limit", "6", "--shard", f"{i}/2", "--no-progress")
    merged = tmp_path / "merged-link.json"
    merged.symlink_to(tmp_path / "merged-real.json")
    code, _, err = _invoke("merge", tmp_path / "s1", tmp_path / "s2", "-o", merged, "-q")
    assert code == 0, err
    shards = sum(json.loads((tmp_path / f"s{i}" / "results.json").read_text())["end_to_end"]["total"] for i in (1, 2))
    assert merged.is_symlink()
    assert json.loads((tmp_path / "merged-real.json").read_text())["end_to_end"]["total"] == shards
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, _, err = _invoke("report", tmp_path / "r", "--format", "json", "-o", fifo)
    reader.join(timeout=60)
    assert code == 0, err
    assert fifo.exists() and not fifo.is_file()  # still the FIFO
    assert got == [(tmp_path / "r" / "results.json").read_bytes()]
