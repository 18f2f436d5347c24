"""The journal: every line reaches the file as it is written; fsync at least once a second,
off the event loop; a torn last line is skipped when reading."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from reliability_cli import journal
from reliability_cli.journal import JournalWriter, read_lines


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_line_is_in_the_file_as_soon_as_it_is_written(tmp_path):
    path = tmp_path / "attempts.jsonl"
    writer = JournalWriter(path, {"run_id": "r"})
    writer.write({"case": "c1", "note": "é \ud800"})  # a lone surrogate from a model's JSON stays valid UTF-8
    lines = path.read_bytes().decode("utf-8").splitlines()  # read by another handle, before close
    assert json.loads(lines[0])["schema"] == journal.SCHEMA
    assert json.loads(lines[1]) == {"case": "c1", "note": "é \ud800"}
    writer.close()


def test_fsync_at_least_once_a_second_and_on_close(tmp_path, monkeypatch):
    clock, synced = Clock(), []
    monkeypatch.setattr(journal, "_clock", clock)
    monkeypatch.setattr(journal.os, "fsync", lambda fd: synced.append(round(clock.now, 6)))
    writer = JournalWriter(tmp_path / "a.jsonl")
    for step in (0.4, 0.4, 0.4, 0.3, 0.9, 2.5, 0.1):  # writes at 100.4 … 105.0
        clock.now += step
        writer.write({"t": clock.now})
    assert synced == [101.2, 102.4, 104.9]
    writer.close()
    assert synced[-1] == 105.0 and len(synced) == 4


def test_inside_a_running_loop_fsync_runs_off_the_loop(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(journal, "_clock", clock)
    threads: list[str] = []

    def slow_fsync(fd: int) -> None:  # a slow disk
        threads.append(threading.current_thread().name)
        time.sleep(0.3)

    monkeypatch.setattr(journal.os, "fsync", slow_fsync)
    writer = JournalWriter(tmp_path / "a.jsonl")

    async def run() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        clock.now += 1.5
        started = time.perf_counter()
        writer.write({"n": 1})  # due for an fsync: handed to a worker thread
        clock.now += 1.5
        writer.write({"n": 2})  # due again, but one is in flight: not queued twice
        blocked = time.perf_counter() - started
        await asyncio.sleep(0.2)
        task.cancel()
        return blocked, ticks

    blocked, ticks = asyncio.run(run())
    assert blocked < 0.05 and ticks >= 10  # the loop kept running during the 0.3 s fsync
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
    writer.close()
    assert threads[-1] == threading.main_thread().name  # the final fsync, before closing
    assert [r["n"] for r in read_lines(tmp_path / "a.jsonl")] == [1, 2]


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    assert list(read_lines(path)) == [{"a": 1}, {"b": 2}]
