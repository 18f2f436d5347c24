"""A finished run's journal and sidecar are stored gzipped (#14 item 5): every command reads
them, ``--resume`` continues them, and a kill at any point of the compression leaves a run
that reads the same."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reliability_cli import journal
from reliability_cli.show import Selection, load_units, to_json
from tests.helpers import ROOT

NAMES = ("attempts.jsonl", "requests.jsonl")


@pytest.fixture
def compress_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compress every finished run, however small (the default spares files under 256 KiB)."""
    monkeypatch.setattr(journal, "COMPRESS_MIN_BYTES", 0)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    shutil.copytree(ROOT / "evalsets" / "six-step-agent", target)
    return target / "pipeline.yaml"


def _eval(cli: Any, project: Path, out: Path, *extra: Any) -> None:
    code, _, err = cli("eval", project, "--out", out, "--limit", "6", "--no-progress", "-q", *extra)
    assert code in (0, 1), err


def _stored(run: Path) -> dict[str, bool]:
    return {p.name: True for p in run.iterdir() if p.name.startswith(NAMES)}


def _plain_copy(run: Path, where: Path) -> Path:
    """The same run with plain files (decompressed by hand, not by relcheck)."""
    shutil.copytree(run, where)
    for name in NAMES:
        gz = where / f"{name}.gz"
        if gz.exists():
            (where / name).write_bytes(gzip.decompress(gz.read_bytes()))
            gz.unlink()
    return where


def _show(run: Path) -> list[dict[str, Any]]:
    units = to_json(load_units(run, Selection(outcome="all")))["units"]
    return json.loads(json.dumps(units))


def test_a_finished_run_is_stored_compressed(compress_all: None, project: Path, tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)
    assert _stored(run) == {"attempts.jsonl.gz": True, "requests.jsonl.gz": True}
    lines = gzip.decompress((run / "attempts.jsonl.gz").read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["schema"] == journal.SCHEMA and sum('"unit_done"' in x for x in lines) == 6


def test_small_runs_stay_plain_by_default(project: Path, tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)
    assert _stored(run) == {"attempts.jsonl": True, "requests.jsonl": True}
    assert journal.compress_run(run, min_bytes=10**9) == []


def test_every_command_reads_a_compressed_run(compress_all: None, project: Path, tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "runs" / "one"
    _eval(cli, project, run)
    assert "attempts.jsonl" not in _stored(run)
    plain = _plain_copy(run, tmp_path / "plain")

    # show, text and --json: the same units as the plain run, full outputs and requests included
    assert _show(run) == _show(plain)
    assert any(a["full_output"] and a["request"] for u in _show(run) for s in u["steps"] for a in s["attempts"])
    code, out, err = cli("show", run, "--outcome", "all", "--json")
    assert code == 0, err
    code2, out2, _ = cli("show", plain, "--outcome", "all", "--json")
    assert json.loads(out)["units"] == json.loads(out2)["units"]

    # report: terminal, and the HTML viewer with the units' detail from the compressed sidecar
    code, out, err = cli("report", run)
    assert code in (0, 1), err
    html = tmp_path / "r.html"
    code, _, err = cli("report", run, "--format", "html", "-o", html)
    assert code in (0, 1), err
    first = _show(plain)[0]
    assert first["case"] in html.read_text()

    # runs and history
    code, out, err = cli("runs", "--dir", tmp_path / "runs", "--json")
    assert code == 0, err
    (info,) = json.loads(out)["runs"] if isinstance(json.loads(out), dict) else json.loads(out)
    assert info["verdict"] != "incomplete" and info["units"] == 6
    code, out, err = cli("history", project, "--dir", tmp_path / "runs", "--json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)["runs"]] == [info["id"]]

    # compare (a run with itself)
    code, out, err = cli("compare", run, run)
    assert code == 0, err

    # resume of a finished compressed run: nothing reruns, the results stay
    before = json.loads((run / "results.json").read_text())
    code, _, err = cli("eval", project, "--resume", run, "--no-progress", "-q")
    assert code in (0, 1), err
    after = json.loads((run / "results.json").read_text())
    assert after["units"] == before["units"] and after["steps"] == before["steps"]
    assert _stored(run) == {"attempts.jsonl.gz": True, "requests.jsonl.gz": True}
    assert _show(run) == _show(plain)


def test_merge_reads_compressed_shard_journals(
    compress_all: None, project: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reliability_cli.results import analysis, merge

    shards = [tmp_path / f"s{i}" for i in (1, 2)]
    for i, out in enumerate(shards, 1):
        _eval(cli, project, out, "--shard", f"{i}/2")
        assert "attempts.jsonl.gz" in _stored(out)
    read: list[Any] = []
    real = analysis.build_results

    def spy(journals: Any, *args: Any, **kwargs: Any) -> Any:
        read.append(journals)
        return real(journals, *args, **kwargs)

    monkeypatch.setattr(merge.analysis, "build_results", spy)
    merged = tmp_path / "merged.json"
    code, _, err = cli("merge", *(s / "results.json" for s in shards), "-o", merged)
    assert code in (0, 1), err
    assert read and [Path(p).parent for p in read[0]] == shards  # from the journals, not the summaries
    units = sum(len(json.loads((s / "results.json").read_text())["units"]) for s in shards)
    assert len(json.loads(merged.read_text())["units"]) == units > 0


def test_resume_of_a_compressed_run_reruns_its_unfinished_units(
    compress_all: None, project: Path, tmp_path: Path, cli: Any
) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)
    full = _show(run)
    # make it look as if the last two units never finished (a run stopped by --max-cost, say)
    lines = gzip.decompress((run / "attempts.jsonl.gz").read_bytes()).decode().splitlines(keepends=True)
    done = [i for i, x in enumerate(lines) if '"unit_done"' in x]
    (run / "attempts.jsonl.gz").write_bytes(gzip.compress("".join(lines[: done[3] + 1]).encode()))
    code, _, err = cli("eval", project, "--resume", run, "--no-progress", "-q")
    assert code in (0, 1), err
    assert _stored(run) == {"attempts.jsonl.gz": True, "requests.jsonl.gz": True}
    text = gzip.decompress((run / "attempts.jsonl.gz").read_bytes()).decode()
    assert text.count('"unit_done"') == 6 and text.count('"schema"') == 1
    assert len(json.loads((run / "results.json").read_text())["units"]) == 6
    assert _show(run) == full  # the sidecar kept the old lines and took the reruns'


def test_traces_runs_are_compressed_too(compress_all: None, tmp_path: Path, cli: Any) -> None:
    from tests.traces import makers

    spans = makers.write_otlp(tmp_path / "spans.jsonl", 20)
    code, _, err = cli("traces", spans, "--out", tmp_path / "run")
    assert code in (0, 1), err
    assert "attempts.jsonl.gz" in _stored(tmp_path / "run")
    assert load_units(tmp_path / "run", Selection(outcome="all")).units


def test_a_damaged_compressed_journal_is_exit_2(compress_all: None, project: Path, tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)
    gz = run / "attempts.jsonl.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    code, _, err = cli("eval", project, "--resume", run, "--no-progress", "-q")
    assert code == 2 and "cannot read the journal" in err and "attempts.jsonl.gz" in err, err
    assert "Traceback" not in err


# ---------------------------------------------------------------- a kill during compression

KILLER = """
import os, sys
from pathlib import Path
from reliability_cli import journal

stage, run = sys.argv[1], Path(sys.argv[2])
calls = {"n": 0}
real_replace, real_unlink = os.replace, Path.unlink

def die():
    os._exit(137)  # as abrupt as SIGKILL: no cleanup, no finally

def replace(src, dst):
    if stage == "before-rename":
        die()
    real_replace(src, dst)
    if stage == "after-rename":
        die()

def unlink(self, missing_ok=False):
    real_unlink(self, missing_ok=missing_ok)
    calls["n"] += 1
    if stage == "after-first-file" and calls["n"] == 1:
        die()

os.replace, Path.unlink = replace, unlink
if stage == "mid-write":
    import gzip
    real_write = gzip.GzipFile.write
    def write(self, data):
        real_write(self, data[: len(data) // 2])
        self.flush()
        die()
    gzip.GzipFile.write = write
journal.compress_run(run, min_bytes=0)
sys.exit(3)  # not reached
"""


@pytest.mark.parametrize("stage", ["mid-write", "before-rename", "after-rename", "after-first-file"])
def test_a_kill_during_compression_leaves_a_readable_run(stage: str, project: Path, tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)  # (plain: small runs are not compressed by default)
    assert "attempts.jsonl" in _stored(run)
    full = _show(run)
    results = json.loads((run / "results.json").read_text())
    proc = subprocess.run([sys.executable, "-c", KILLER, stage, str(run)], capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    names = set(_stored(run))
    assert any(n.endswith(".tmp") for n in names) == (stage in ("mid-write", "before-rename"))
    assert _show(run) == full  # show, the viewer
    code, _, err = cli("report", run)
    assert code in (0, 1), err
    # a resume cleans up, reruns nothing, and leaves one readable form of each file
    code, _, err = cli("eval", project, "--resume", run, "--no-progress", "-q")
    assert code in (0, 1), err
    assert not any(n.endswith(".tmp") for n in _stored(run))
    assert json.loads((run / "results.json").read_text())["units"] == results["units"]
    assert _show(run) == full
    for name in NAMES:
        assert (run / name).exists() != (run / f"{name}.gz").exists(), sorted(_stored(run))


def test_no_output_flag_overwrites_a_compressed_run_file(
    compress_all: None, project: Path, tmp_path: Path, cli: Any
) -> None:
    run = tmp_path / "run"
    _eval(cli, project, run)
    for name in ("attempts.jsonl.gz", "requests.jsonl.gz"):
        before = (run / name).read_bytes()
        code, _, err = cli("report", run, "--format", "markdown", "-o", run / name)
        assert code == 2 and name in err, err
        assert (run / name).read_bytes() == before
