"""Journals, cassettes and run directories after a kill or a full disk (issue 10, items 7-9)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from reliability_cli.errors import ResultsError
from reliability_cli.journal import read_lines
from tests.endpoints.helpers import http_response, raw_server, read_request, write_pipeline

# ---------------------------------------------------------------- item 7: torn and garbled lines


def test_a_torn_tail_inside_a_multibyte_character_is_a_torn_line(finished_run: Path, cli) -> None:
    journal = finished_run / "attempts.jsonl"
    complete = journal.read_bytes()
    torn = '{"case": "ç"}'.encode()[:11]  # ends on the first byte of "ç"
    assert torn.endswith(b"\xc3")
    journal.write_bytes(complete + torn)
    assert len(list(read_lines(journal))) == complete.count(b"\n")
    code, _, err = cli(
        "eval", finished_run.parent / "pipeline.yaml", "--resume", finished_run, "--limit", "4", "--no-progress", "-q"
    )
    assert code in (0, 1), err
    assert journal.read_bytes() == complete  # the torn tail dropped, nothing rerun


def test_a_garbled_line_in_the_middle_is_refused_with_its_number(finished_run: Path, cli) -> None:
    journal = finished_run / "attempts.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines.insert(3, b'{"case": "c1", "tri\xff\n')
    journal.write_bytes(b"".join(lines))
    code, _, err = cli(
        "eval", finished_run.parent / "pipeline.yaml", "--resume", finished_run, "--limit", "4", "--no-progress"
    )
    assert code == 2 and f"{journal}:4:" in err and "garbled" in err, err
    assert "Traceback" not in err
    with pytest.raises(ResultsError):
        list(read_lines(journal))


def test_a_garbled_last_complete_line_is_still_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": \n')
    assert list(read_lines(path)) == [{"a": 1}, {"b": 2}]
    path.write_bytes(b'{"a": 1}\n[1, 2]\n{"c": 3}\n')  # not an object, and lines follow
    with pytest.raises(ResultsError, match="line is not a journal record"):
        list(read_lines(path))


def test_a_unit_done_without_its_unit_is_refused(finished_run: Path, cli) -> None:
    journal = finished_run / "attempts.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines.insert(2, b'{"unit_done": 5}\n')
    journal.write_bytes(b"".join(lines))
    code, _, err = cli(
        "eval", finished_run.parent / "pipeline.yaml", "--resume", finished_run, "--limit", "4", "--no-progress"
    )
    assert code == 2 and f"{journal}:3:" in err and "unit_done" in err, err


# ---------------------------------------------------------------- item 8: cassettes across a kill


def _changing_server(state: dict[str, str]):
    async def handler(reader, writer) -> None:
        while True:
            try:
                await read_request(reader)
            except Exception:
                return
            writer.write(http_response(200, {"choices": [{"message": {"content": state["reply"]}}]}))
            await writer.drain()

    return handler


def test_a_cassette_recorded_across_a_kill_and_a_resume_replays_the_run(tmp_path: Path, cli) -> None:
    """The kill is reproduced exactly: the units it cancelled have exchanges in the cassette
    and no ``unit_done`` in the journal. Their rerun answers differently; replay must serve the
    rerun's exchanges, never the cancelled ones."""
    state = {"reply": "stale"}
    with raw_server(_changing_server(state)) as url:
        pipeline = {
            "name": "k",
            "endpoints": {"llm": {"type": "openai", "base_url": url + "/v1", "model": "m"}},
            "steps": [
                {
                    "id": "s",
                    "endpoint": "llm",
                    "prompt": "{{ vars.q }}",
                    "checks": [{"type": "equals", "value": "fresh"}],
                }
            ],
        }
        path = write_pipeline(tmp_path / "p", pipeline, [{"id": f"c{i}", "vars": {"q": f"q{i}"}} for i in range(6)])
        run, cassette = tmp_path / "run", tmp_path / "tape.jsonl"
        code, _, err = cli("eval", path, "--out", run, "--record", cassette, "--no-progress", "-q")
        assert code == 0, err  # no gates: a verdict of pass
        journal = run / "attempts.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        killed = {"c3", "c4", "c5"}
        journal.write_text("".join(x for x in lines if json.loads(x).get("unit_done", {}).get("case") not in killed))
        (run / "results.json").unlink()
        state["reply"] = "fresh"
        code, _, err = cli("eval", path, "--resume", run, "--record", cassette, "--no-progress", "-q")
        assert code == 0, err
    recorded = json.loads((run / "results.json").read_text())
    assert [u["passed"] for u in recorded["units"]] == [False, False, False, True, True, True]
    code, _, err = cli("eval", path, "--out", tmp_path / "replayed", "--replay", cassette, "--no-progress", "-q")
    assert code == 0, err
    replayed = json.loads((tmp_path / "replayed" / "results.json").read_text())
    assert [u["passed"] for u in replayed["units"]] == [False, False, False, True, True, True]
    assert replayed["end_to_end"]["rate"] == recorded["end_to_end"]["rate"] == 0.5


def _gated_server(state: dict):
    """Answers the first ``state["answer"]`` requests at once with ``state["reply"]``; later
    ones wait until ``state["open"]`` (so a unit is caught between its two steps)."""

    async def handler(reader, writer) -> None:
        import asyncio

        while True:
            try:
                await read_request(reader)
            except Exception:
                return
            state["seen"] += 1
            if state["seen"] > state["answer"]:
                while not state["open"]:
                    await asyncio.sleep(0.01)
            writer.write(http_response(200, {"choices": [{"message": {"content": state["reply"]}}]}))
            try:
                await writer.drain()
            except Exception:
                return

    return handler


def test_a_live_kill_9_then_resume_record_replays_the_recorded_run(tmp_path: Path, cli) -> None:
    """A real ``kill -9`` of ``relcheck eval --record`` (one unit at a time, two steps each),
    once two units are journaled done and the third is held between its steps: that unit's
    first exchange is in the cassette, its ``unit_done`` is not. ``--resume --record`` reruns
    it against a server that now answers differently; ``--replay`` must give the same
    end-to-end results as the recorded run. The waits are bounded polls (hang guards)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    state = {"reply": "stale", "answer": 5, "seen": 0, "open": False}
    with raw_server(_gated_server(state)) as url:
        steps = [  # a passes on either reply; b judges, and its prompt carries a's output
            {"id": "a", "endpoint": "llm", "prompt": "a {{ vars.q }}", "checks": [{"type": "contains", "value": "e"}]},
            {
                "id": "b",
                "endpoint": "llm",
                "prompt": "b {{ vars.q }} {{ steps.a.output }}",
                "checks": [{"type": "equals", "value": "fresh"}],
            },
        ]
        pipeline = {
            "name": "k9",
            "endpoints": {"llm": {"type": "openai", "base_url": url + "/v1", "model": "m"}},
            "steps": steps,
        }
        path = write_pipeline(tmp_path / "p", pipeline, [{"id": f"c{i}", "vars": {"q": f"q{i}"}} for i in range(5)])
        run, cassette = tmp_path / "run", tmp_path / "tape.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reliability_cli",
                "eval",
                str(path),
                "--out",
                str(run),
                "--record",
                str(cassette),
                "--concurrency",
                "1",
                "--no-progress",
                "-q",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            deadline = time.monotonic() + 90
            journal = run / "attempts.jsonl"
            while state["seen"] <= state["answer"]:  # request 6 (c2's step b) is being held
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the run never reached the held request"
                time.sleep(0.02)
            while journal.read_text().count('"unit_done"') < 2:
                assert time.monotonic() < deadline, "two units were never journaled done"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
            if proc.stderr is not None:
                proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        done = [json.loads(x)["unit_done"]["case"] for x in journal.read_text().splitlines() if '"unit_done"' in x]
        assert done == ["c0", "c1"]
        tape = cassette.read_text()
        assert tape.count("stale") >= 5  # c2's step a is on the tape, from the killed unit
        state.update(reply="fresh", open=True)
        code, _, err = cli("eval", path, "--resume", run, "--record", cassette, "--no-progress", "-q")
        assert code in (0, 1), err
    recorded = json.loads((run / "results.json").read_text())
    assert [u["passed"] for u in recorded["units"]] == [False, False, True, True, True]
    code, _, err = cli("eval", path, "--out", tmp_path / "replayed", "--replay", cassette, "--no-progress", "-q")
    assert code in (0, 1), err
    replayed = json.loads((tmp_path / "replayed" / "results.json").read_text())
    assert replayed["units"] == recorded["units"]
    assert replayed["end_to_end"] == recorded["end_to_end"]
    assert [s["rate"] for s in replayed["steps"]] == [s["rate"] for s in recorded["steps"]]


# ---------------------------------------------------------------- item 9: interrupted run directories


def test_a_directory_with_only_a_lock_can_be_started_with_out(project: Path, cli) -> None:
    run = project.parent / "run"
    run.mkdir()
    (run / ".lock").write_text("123\n")
    (run / "manifest.json.tmp").write_text('{"half')
    code, _, err = cli("eval", project, "--resume", run, "--limit", "2", "--no-progress")
    assert code == 2 and f"--out {run}" in err, err
    code, _, err = cli("eval", project, "--out", run, "--limit", "2", "--no-progress", "-q")
    assert code in (0, 1), err
    assert sorted(p.name for p in run.iterdir()) == [
        ".lock",
        "attempts.jsonl",
        "manifest.json",
        "requests.jsonl",
        "results.json",
    ]


def test_a_directory_with_other_files_is_still_refused(project: Path, cli) -> None:
    run = project.parent / "run"
    run.mkdir()
    (run / ".lock").write_text("")
    (run / "notes.txt").write_text("mine")
    code, _, err = cli("eval", project, "--out", run, "--limit", "2", "--no-progress")
    assert code == 2 and "not empty" in err, err
    assert (run / "notes.txt").read_text() == "mine"


def test_stale_temp_files_are_cleaned_up_on_resume(finished_run: Path, cli) -> None:
    for name in ("results.json.tmp", "attempts.jsonl.tmp", "manifest.json.tmp"):
        (finished_run / name).write_text("half-written")
    code, _, err = cli(
        "eval", finished_run.parent / "pipeline.yaml", "--resume", finished_run, "--limit", "4", "--no-progress", "-q"
    )
    assert code in (0, 1), err
    assert not list(finished_run.glob("*.tmp"))


def test_a_failed_atomic_write_leaves_no_temp_file(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reliability_cli.results import schema

    results = schema.load(finished_run)

    def full(self, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(schema._Scrubbed, "write", full)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(OSError):
        schema.write(results, target / "results.json")
    assert list(target.iterdir()) == []
