"""Ctrl-C and SIGTERM stop a run whatever the endpoint does (issue 10, item 18).

Each test runs ``relcheck eval`` as a real subprocess, waits (polling, bounded) until the
journal shows a finished unit, sends the signal and requires exit 130 with results.json
written. A run that ignores the signal, or a process kept alive by a blocked callable, fails
by the generous ``STOP_BOUND_S`` timeout (that is a hang, not a timing measurement).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..helpers import ROOT, SIX, journal_text

STOP_BOUND_S = 45.0
FIRST_UNIT_BOUND_S = 90.0

CALLABLES = """
import asyncio, time

def block_sync(ctx):
    time.sleep(3600)

async def block_async(ctx):
    time.sleep(3600)  # blocks whatever loop it runs on

def fast_then_block(ctx):
    if ctx["case"]["id"] != "c0":
        time.sleep(3600)
    return "ok"

def raise_exit(ctx):
    raise SystemExit(3)

async def raise_exit_async(ctx):
    raise SystemExit(4)
"""


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-m", "reliability_cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_unit_done(journal: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + FIRST_UNIT_BOUND_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"relcheck ended before any unit was done: {proc.stderr.read() if proc.stderr else ''}"
            )
        if journal.exists() and '"unit_done"' in journal.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError("no unit finished in time")


def interrupt(proc: subprocess.Popen[str], run: Path, sig: int) -> tuple[str, str]:
    wait_for_unit_done(run / "attempts.jsonl", proc)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=STOP_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"relcheck did not stop within {STOP_BOUND_S} s of the signal") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    results = json.loads((run / "results.json").read_text())
    assert results["verdict"] == "error" and results["run"]["interrupted"]
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_long_run_on_the_in_process_mock_stops(tmp_path, sig):
    """Six steps × 1,200 cases × 30 trials: minutes of work; the mock yields to the loop."""
    run = tmp_path / "run"
    proc = start(["eval", str(SIX), "--trials", "30", "--out", str(run), "--no-progress"], tmp_path)
    interrupt(proc, run, sig)
    done = [x for x in journal_text(run / "attempts.jsonl").splitlines() if '"unit_done"' in x]
    assert 0 < len(done) < 36_000


def _python_pipeline(tmp_path: Path, callable_name: str, cases: int = 20) -> Path:
    (tmp_path / "hostile_callables.py").write_text(CALLABLES)
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}"}) + "\n" for i in range(cases)))
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""version: 1
name: blocking
evalset: cases.jsonl
endpoints:
  code: {{type: python, callable: "hostile_callables:{callable_name}", timeout_s: 0.5}}
steps:
  - id: a
    endpoint: code
    retry: {{max_attempts: 1}}
""")
    return path


@pytest.mark.parametrize("callable_name", ["block_sync", "block_async", "fast_then_block"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_blocking_python_callable_does_not_keep_the_process_alive(tmp_path, callable_name, sig):
    run = tmp_path / "run"
    proc = start(
        [
            "eval",
            str(_python_pipeline(tmp_path, callable_name)),
            "--out",
            str(run),
            "--no-progress",
            "--concurrency",
            "2",
        ],
        tmp_path,
    )
    interrupt(proc, run, sig)
    attempts = [json.loads(x) for x in journal_text(run / "attempts.jsonl").splitlines() if '"attempt"' in x]
    if callable_name != "fast_then_block":  # each blocked call ended as a timeout, on time
        assert attempts and all(a["error_kind"] == "timeout" for a in attempts if "unit_done" not in a)


@pytest.mark.parametrize("callable_name", ["raise_exit", "raise_exit_async"])
def test_system_exit_in_a_callable_is_an_exception_attempt(tmp_path, callable_name):
    run = tmp_path / "run"
    proc = start(
        ["eval", str(_python_pipeline(tmp_path, callable_name, cases=3)), "--out", str(run), "--no-progress"], tmp_path
    )
    out, err = proc.communicate(timeout=STOP_BOUND_S + FIRST_UNIT_BOUND_S)
    assert "Traceback" not in err and "exception was never retrieved" not in err, err
    assert proc.returncode in (0, 1), err  # a judged run (exception is not infrastructure)
    attempts = [json.loads(x) for x in journal_text(run / "attempts.jsonl").splitlines() if '"attempt"' in x]
    assert len(attempts) == 3
    assert all(a["error_kind"] == "exception" and "SystemExit" in a["reason"] for a in attempts)


def test_an_interrupted_eval_exits_without_the_interpreters_teardown(tmp_path):
    """After an interruption everything is written (results.json, the message); the entry
    point then leaves with ``os._exit(130)``: tearing down pandas and numpy would cost
    0.1-1 s of the 2 s a stop may take. Seen through an ``atexit`` hook that a
    ``sitecustomize`` installs: it runs for a normal exit and not for the interrupted one."""
    marker = tmp_path / "teardown.txt"
    (tmp_path / "sitecustomize.py").write_text(
        f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'a').write('teardown\\n'))\n"
    )
    normal = start(["validate", str(SIX)], tmp_path)
    normal.communicate(timeout=FIRST_UNIT_BOUND_S)
    assert normal.returncode == 0 and marker.read_text() == "teardown\n"  # the hook works
    marker.unlink()
    run = tmp_path / "run"
    proc = start(["eval", str(SIX), "--trials", "30", "--out", str(run), "--no-progress"], tmp_path)
    _, err = interrupt(proc, run, signal.SIGINT)
    assert "Resume with:" in err  # the message was flushed before the exit
    assert not marker.exists()


def test_a_run_imports_no_pandas_so_nothing_is_left_to_import_after_a_stop(tmp_path):
    """The aggregation is plain Python: neither the run nor building its results imports
    pandas (nor numpy, for a run this size), so an interrupted run has no import to pay
    between the signal and its exit, and nothing needs preloading while the units run.
    Seen at the interpreter's exit through an ``atexit`` hook that a ``sitecustomize``
    installs; the same hook sees pandas when a command does import it."""
    seen = tmp_path / "modules.txt"
    (tmp_path / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(seen)!r}, 'a').write("
        "' '.join(m for m in ('pandas', 'numpy') if m in sys.modules) + '\\n'))\n"
    )
    run = tmp_path / "run"
    proc = start(["eval", str(SIX), "--limit", "200", "--trials", "2", "--out", str(run), "--no-progress"], tmp_path)
    _, err = proc.communicate(timeout=STOP_BOUND_S + FIRST_UNIT_BOUND_S)
    assert proc.returncode in (0, 1), err
    assert json.loads((run / "results.json").read_text())["end_to_end"]["total"] == 400
    assert seen.read_text() == "\n"  # the run, its results and its report: no pandas, no numpy
    seen.unlink()
    other = start(["compare", str(run), str(run)], tmp_path)  # compare does use pandas: the hook sees it
    _, err = other.communicate(timeout=FIRST_UNIT_BOUND_S)
    assert "pandas" in seen.read_text().split(), err


HANG_AFTER_SIGNAL = """
import asyncio, os, signal

async def signal_then_hang(ctx):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this attempt is in flight
    await asyncio.sleep(3600)
"""


def test_an_interrupt_gives_units_in_flight_half_a_second_then_cancels_them(tmp_path, monkeypatch):
    """The interrupt path, counted in-process: one cancellation of the workers, scheduled
    ``STOP_GRACE_S`` (0.5 s: with building the results, well inside the two seconds) after
    the signal; the unit in flight writes no ``unit_done`` (a resume reruns it); exit 130."""
    import asyncio as aio

    from reliability_cli.runner import RunOptions, engine, run_eval

    (tmp_path / "hang_callables.py").write_text(HANG_AFTER_SIGNAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = _python_pipeline(tmp_path, "signal_then_hang", cases=1)
    pipeline.write_text(
        pipeline.read_text()
        .replace("hostile_callables:signal_then_hang", "hang_callables:signal_then_hang")
        .replace("timeout_s: 0.5", "timeout_s: 3600")
    )
    delays: list[float] = []
    cancels: list[int] = []
    real_call_later = aio.BaseEventLoop.call_later
    real_cancel = engine.Engine._cancel_workers

    def spy_call_later(self, delay, callback, *args, **kwargs):
        if getattr(callback, "__func__", None) is spy_cancel:
            delays.append(delay)
        return real_call_later(self, delay, callback, *args, **kwargs)

    def spy_cancel(self):
        cancels.append(sum(not w.done() for w in self._workers))
        real_cancel(self)

    monkeypatch.setattr(aio.BaseEventLoop, "call_later", spy_call_later)
    monkeypatch.setattr(engine.Engine, "_cancel_workers", spy_cancel)
    outcome = run_eval(str(pipeline), RunOptions(out=str(tmp_path / "run")))
    assert outcome.exit_code == 130
    assert delays == [engine.STOP_GRACE_S] and engine.STOP_GRACE_S <= 0.5
    assert cancels == [1]  # one worker still blocked in its attempt, cancelled once
    journal = (tmp_path / "run" / "attempts.jsonl").read_text()
    assert '"unit_done"' not in journal
    assert outcome.results.to_dict()["run"]["interrupted"] is True
