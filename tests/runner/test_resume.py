"""Durable runs: SIGKILL at any moment loses no finished unit; resume reruns only the rest."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import time
from collections import Counter
from pathlib import Path

from tests.helpers import journal_text, run_relcheck

from .helpers import comparable, load, spawn, wait_for

ARGS = ("--concurrency", "4", "--retries", "1", "-q", "--no-progress")


def test_sigkill_five_times_then_resume_equals_uninterrupted(project: Path, tmp_path: Path) -> None:
    ref = run_relcheck("eval", project, "--out", tmp_path / "ref", *ARGS, cwd=project.parent)
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    journal = run / "attempts.jsonl"
    proc = spawn("eval", project, "--out", run, *ARGS, cwd=project.parent)
    kills = 0
    for moment in (0, 15, 60, 110, 170):  # units finished before the kill
        if moment:
            proc = spawn("eval", project, "--resume", run, *ARGS, cwd=project.parent)
        if moment == 0:
            deadline = time.monotonic() + 20
            while not journal.exists() and time.monotonic() < deadline:
                time.sleep(0.002)
        else:
            wait_for(journal, moment, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
    assert kills == 5
    final = run_relcheck("eval", project, "--resume", run, *ARGS, cwd=project.parent)
    assert final.returncode == 0, final.stderr
    assert comparable(load(run / "results.json")) == comparable(load(tmp_path / "ref" / "results.json"))
    done = Counter()
    for line in journal.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "unit_done" in rec:
            done[(rec["unit_done"]["case"], rec["unit_done"]["trial"])] += 1
    assert len(done) == 200 and set(done.values()) == {1}, "a unit ran to completion twice"


def test_sigint_exits_130_with_partial_results_and_a_working_resume(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = spawn("eval", project, "--out", run, *ARGS, cwd=project.parent)
    wait_for(run / "attempts.jsonl", 30, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - sent < 4
    assert proc.returncode == 130, err
    partial = load(run / "results.json")
    assert partial["verdict"] == "error" and partial["exit_code"] == 130
    assert partial["run"]["interrupted"] is True and 30 <= len(partial["units"]) < 200
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith("relcheck eval ") and f"--resume {run}" in command
    args = shlex.split(command)[1:]
    resumed = run_relcheck(*args, cwd=project.parent)
    assert resumed.returncode == 0, resumed.stderr
    ref = run_relcheck("eval", project, "--out", tmp_path / "ref", *ARGS, cwd=project.parent)
    assert ref.returncode == 0, ref.stderr
    assert comparable(load(run / "results.json")) == comparable(load(tmp_path / "ref" / "results.json"))


def test_resume_refuses_changed_pipeline_or_flag(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = run_relcheck("eval", project, "--out", run, "--limit", "20", *ARGS, cwd=project.parent)
    assert first.returncode == 0, first.stderr
    changed_flag = run_relcheck(
        "eval", project, "--resume", run, "--limit", "20", "--trials", "2", *ARGS, cwd=project.parent
    )
    assert changed_flag.returncode == 2 and "--trials differs" in changed_flag.stderr
    # a flag left out is the run's (#11): the recorded --limit 20 is used, nothing differs
    missing_flag = run_relcheck("eval", project, "--resume", run, *ARGS, cwd=project.parent)
    assert missing_flag.returncode == 0 and "differs" not in missing_flag.stderr, missing_flag.stderr
    project.write_text(project.read_text(encoding="utf-8").replace("min: 0.5", "min: 0.6"), encoding="utf-8")
    changed = run_relcheck("eval", project, "--resume", run, "--limit", "20", *ARGS, cwd=project.parent)
    assert changed.returncode == 2 and "pipeline differs" in changed.stderr
    cases = project.parent / "cases.jsonl"
    cases.write_text(cases.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    project.write_text(project.read_text(encoding="utf-8").replace("min: 0.6", "min: 0.5"), encoding="utf-8")
    changed_set = run_relcheck("eval", project, "--resume", run, "--limit", "20", *ARGS, cwd=project.parent)
    assert changed_set.returncode == 2 and "eval sets differ" in changed_set.stderr


def test_second_writer_is_refused(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_relcheck("eval", project, "--out", run, "--limit", "5", *ARGS, cwd=project.parent).returncode == 0
    with open(run / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running relcheck holds it
        second = run_relcheck("eval", project, "--resume", run, "--limit", "5", *ARGS, cwd=project.parent)
    assert second.returncode == 2 and "another relcheck is writing" in second.stderr
    assert run_relcheck("eval", project, "--resume", run, "--limit", "5", *ARGS, cwd=project.parent).returncode == 0


def test_out_must_be_new_or_empty(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_relcheck("eval", project, "--out", run, "--limit", "5", *ARGS, cwd=project.parent).returncode == 0
    again = run_relcheck("eval", project, "--out", run, "--limit", "5", *ARGS, cwd=project.parent)
    assert again.returncode == 2 and "not empty" in again.stderr
    assert os.path.exists(run / "results.json")


def test_retry_errors_reruns_infrastructure_errors(tmp_path: Path) -> None:
    from .helpers import make_project

    pipeline = make_project(tmp_path / "p", cases=40, latency_ms=0, fail_rate=0.2, failure="error")
    run = tmp_path / "run"
    first = run_relcheck("eval", pipeline, "--out", run, "-q", cwd=pipeline.parent)
    before = load(run / "results.json")
    errored = [u for u in before["units"] if u["outcome"] == "error"]
    # seed 3: 2 of 40 units end in an infrastructure error (5% ≤ max_error_rate), e2e 95% ≥ 0.5
    assert first.returncode == 0 and len(errored) == 2, first.stdout
    again = run_relcheck("eval", pipeline, "--resume", run, "--retry-errors", "-q", cwd=pipeline.parent)
    assert again.returncode == 0, again.stderr
    after = load(run / "results.json")
    assert len(after["units"]) == 40
    # the mock's draws are deterministic: rerun units end exactly as before, but they did run again
    assert comparable(after)["units"] == comparable(before)["units"]
    records = [json.loads(line) for line in journal_text(run / "attempts.jsonl").splitlines()[1:]]
    done = [r["unit_done"]["case"] for r in records if "unit_done" in r]
    assert len(done) == 40
    # journal order proves the rerun: the errored units were dropped by the compaction and ran
    # again after every other unit, with all of their attempts journaled anew
    rerun = {u["case"] for u in errored}
    assert set(done[-len(rerun) :]) == rerun and not rerun & set(done[: -len(rerun)])
    for case in rerun:
        lines = [r for r in records if r.get("case") == case and "unit_done" not in r]
        assert len(lines) == next(u["attempts"] for u in after["units"] if u["case"] == case)
