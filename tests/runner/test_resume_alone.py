"""`relcheck eval --resume RUN_DIR` alone continues with the manifest's pipeline and flags (#11)."""

from __future__ import annotations

import json

from tests.results.helpers import write_pipeline


def _units(run_dir):
    return json.loads((run_dir / "results.json").read_text())["units"]


def test_resume_alone_takes_the_recorded_pipeline_and_flags(tmp_path, cli, monkeypatch):
    path = write_pipeline(tmp_path / "p", [("a", 0.2, "wrong"), ("b", 0.1, "error")], 30)
    run_dir = tmp_path / "run"
    flags = ["--trials", "2", "--seed", "7", "--limit", "20", "--retries", "1"]
    code, _, err = cli("eval", path, *flags, "--out", run_dir, "-q")
    assert code in (0, 1), err
    full = _units(run_dir)
    assert len(full) == 40
    # cut the journal after a third of it: the rest must be rerun with the same flags
    journal = run_dir / "attempts.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[: len(lines) // 3]))
    (run_dir / "results.json").unlink()
    monkeypatch.chdir(tmp_path)  # the recorded paths are used as recorded, from anywhere they resolve
    code, out, err = cli("eval", "--resume", run_dir, "-q")
    assert code in (0, 1), err
    assert _units(run_dir) == full
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["flags"]["trials"] == 2 and len(manifest["resumes"]) == 1
    # a flag given explicitly must still match
    code, _, err = cli("eval", "--resume", run_dir, "--trials", "3", "-q")
    assert code == 2 and "--trials differs (run: 2, now: 3)" in err
    code, _, err = cli("eval", path, "--resume", run_dir, "--seed", "7", "-q")
    assert code in (0, 1), err


def test_eval_without_pipeline_or_resume_is_bad_input(cli):
    code, _, err = cli("eval")
    assert code == 2 and "missing PIPELINE" in err
