"""No output flag may write over a run's inputs or its run files (issue 10, item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reliability_cli.errors import UsageError
from reliability_cli.outputs import refuse_overwrites


def _snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def test_eval_refuses_to_write_over_its_pipeline_and_eval_set(project: Path, cli) -> None:
    cases = project.parent / "cases.jsonl"
    before = _snapshot(project, cases)
    code, _, err = cli(
        "eval",
        project,
        "--json",
        cases,
        "--markdown",
        project,
        "--limit",
        "2",
        "--out",
        project.parent / "run",
        "--no-progress",
    )
    assert code == 2 and "would overwrite the eval set" in err, err
    assert _snapshot(project, cases) == before
    assert not (project.parent / "run").exists()  # refused before anything ran


@pytest.mark.parametrize("link", ["symlink", "hardlink", "dotdot"])
def test_the_same_file_under_another_name_is_the_same_file(project: Path, cli, link: str) -> None:
    cases = project.parent / "cases.jsonl"
    alias = project.parent / "alias.xml"
    if link == "symlink":
        alias.symlink_to(cases)
    elif link == "hardlink":
        os.link(cases, alias)
    else:
        alias = project.parent / "sub" / ".." / "cases.jsonl"
        (project.parent / "sub").mkdir()
    before = cases.read_bytes()
    code, _, err = cli(
        "eval", project, "--junit", alias, "--limit", "2", "--out", project.parent / "run", "--no-progress"
    )
    assert code == 2 and "--junit" in err and "eval set" in err, err
    assert cases.read_bytes() == before


def test_eval_refuses_the_replayed_cassette_the_baseline_and_its_own_run_files(
    project: Path, cli, finished_run: Path
) -> None:
    cassette = project.parent / "tape.jsonl"
    cassette.write_text('{"relcheck_cassette": 1}\n')
    run = project.parent / "new-run"
    baseline = finished_run / "results.json"
    before = _snapshot(cassette, baseline)
    for flags, expected in [
        (["--replay", cassette, "--html", cassette], "cassette given to --replay"),
        (["--baseline", baseline, "--markdown", baseline], "the baseline"),
        (["--out", run, "--json", run / "results.json"], "run file results.json"),
        (["--out", run, "--record", run / "attempts.jsonl"], "run file attempts.jsonl"),
        (["--json", project.parent / "x", "--junit", project.parent / "x"], "writes the same file"),
    ]:
        code, _, err = cli("eval", project, *flags, "--limit", "2", "--no-progress")
        assert code == 2 and expected in err, (flags, err)
    assert _snapshot(cassette, baseline) == before


def test_report_plan_compare_and_merge_keep_their_inputs_and_run_files(finished_run: Path, cli) -> None:
    files = [finished_run / n for n in ("attempts.jsonl", "results.json", "manifest.json")]
    before = _snapshot(*files)
    results = finished_run / "results.json"
    attempts = [
        (["report", finished_run, "--format", "markdown", "-o", finished_run / "attempts.jsonl"], "attempts.jsonl"),
        (["report", results, "--format", "json", "-o", results], "the results file it reads"),
        (["report", finished_run, "--format", "json", "-o", finished_run / "manifest.json"], "manifest.json"),
        (["plan", finished_run, "--target", "0.9", "--json", results], "the results file it reads"),
        (["compare", results, results, "--markdown", results], "the baseline results"),
        (["compare", finished_run, finished_run, "--json", finished_run / "attempts.jsonl"], "attempts.jsonl"),
        (["merge", finished_run, "-o", results], "the shard results"),
        (["merge", finished_run, "-o", "-", "--junit", finished_run / ".lock"], ".lock"),
    ]
    for args, expected in attempts:
        code, _, err = cli(*args)
        assert code == 2 and expected in err, (args, err)
    assert _snapshot(*files) == before
    # A resume still finds every unit done: the journal survived.
    code, _, err = cli(
        "eval", finished_run.parent / "pipeline.yaml", "--resume", finished_run, "--limit", "4", "--no-progress", "-q"
    )
    assert code in (0, 1), err
    assert (finished_run / "attempts.jsonl").read_bytes() == before[files[0]]


def test_other_existing_files_are_replaced(finished_run: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "old.md"
    target.write_text("old text")
    code, _, err = cli("report", finished_run, "--format", "markdown", "-o", target)
    assert code == 0, err
    assert "old text" not in target.read_text() and "six-step-agent" in target.read_text()


def test_the_helper(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_text("x")
    refuse_overwrites({"--json": "-", "--html": None, "--junit": tmp_path / "b"}, [("the input", a), ("none", None)])
    with pytest.raises(UsageError, match=r"--junit .*would overwrite the input"):
        refuse_overwrites({"--junit": a}, [("the input", a)])
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    refuse_overwrites({"--json": loop}, [("the input", a)])  # a symlink loop is not an input: no crash
