"""Progress on stderr: a rich bar in a terminal (a real pseudo-terminal here), a plain line
at most every 10 s in CI logs."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from reliability_cli.cli import progress
from tests.helpers import SIX


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_at_most_every_ten_seconds(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = progress.PlainProgress()
    bar.start(100)
    for i in range(70):  # a unit every 0.5 s; two of every three pass; each sent 2 requests
        clock.now += 0.5
        bar.unit_done({"passed": i % 3 != 2, "attempts": 2})
    bar.stop()
    lines = capsys.readouterr().err.splitlines()
    # at 10 s, 20 s, 30 s (units 20, 40, 60), then the last line at stop (35 s, 70 units)
    assert lines == [
        "relcheck: 20/100 units, e2e 70.0%, 4 req/s, now 240 req/min, ETA 0:00:40",
        "relcheck: 40/100 units, e2e 67.5%, 4 req/s, now 252 req/min, ETA 0:00:30",
        "relcheck: 60/100 units, e2e 66.7%, 4 req/s, now 252 req/min, ETA 0:00:20",
        "relcheck: 70/100 units, e2e 67.1%, 4 req/s, now 252 req/min, ETA 0:00:15",
    ]


def test_the_current_rate_is_over_the_last_ten_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    rate = progress.CurrentRate()
    for _ in range(20):  # 10 s at 6 requests a second
        clock.now += 0.5
        rate.add(clock.now, 3)
    assert rate.per_min(clock.now) == 360
    for _ in range(40):  # then 20 s at 1 request a second: the window forgets the faster start
        clock.now += 1.0
        rate.add(clock.now, 1)
    assert rate.per_min(clock.now) == 66  # 11 events within the last 10 s (both ends included)


def test_a_short_run_prints_no_plain_line(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = progress.PlainProgress()
    bar.start(10)
    for _ in range(10):
        clock.now += 0.2
        bar.unit_done({"passed": True, "attempts": 1})
    bar.stop()
    assert capsys.readouterr().err == ""


def test_isolated_attempts_count_as_requests():
    record = {"attempts": 3, "isolated": [{"attempts": 2}, {"final": "skipped"}]}
    assert progress._requests(record) == 5


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_gets_the_rich_bar_on_stderr(tmp_path):
    master, slave = os.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reliability_cli", "eval", str(SIX), "--out", str(tmp_path / "r"), "--concurrency", "1"],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode("utf-8", "replace")
    assert "\x1b[" in text  # drawn, then cleared (transient), on the terminal
    assert "eval" in text and "/1200" in text and "e2e " in text and "req/min" in text
    assert b"req/s" not in stdout and b"1200" in stdout  # the report goes to stdout, the bar never does


def test_a_pipe_gets_no_bar(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reliability_cli", "eval", str(SIX), "--out", str(tmp_path / "r"), "--limit", "100"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stderr and "req/s" not in proc.stderr  # a quick run: not even a plain line
