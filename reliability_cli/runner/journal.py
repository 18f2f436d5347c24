"""The attempts journal: ``attempts.jsonl``, appended and flushed line by line.

The first line is a header with the schema version and the hashes of the pipeline and eval
sets. Then one line per attempt and one ``{"unit_done": …}`` line per finished unit. Every
line is flushed when written and the file is fsynced at least once a second, so a run killed
with ``kill -9`` loses no finished unit; a torn last line is dropped on resume.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

SCHEMA = "relcheck.attempts/v1"
FSYNC_EVERY_S = 1.0


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JournalWriter:
    """Appends JSON lines; fsyncs at most once a second and on close.

    The file is opened unbuffered: each line goes to the kernel in one ``write`` call as it
    is written (a killed process loses nothing it wrote), with no buffer layers to flush.
    """

    def __init__(self, path: Path, header: dict[str, Any] | None = None) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self._fh: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115
        self._last_sync = time.monotonic()
        if new and header is not None:
            self.write({"schema": SCHEMA, **header})

    def write(self, record: dict[str, Any]) -> None:
        text = _ENCODER.encode(record)
        try:
            line = (text + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a model's JSON): escape it, stay valid UTF-8
            line = (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
        written = self._fh.write(line)
        while written is not None and written < len(line):  # a short write (signals, full pipes)
            line = line[written:]
            written = self._fh.write(line)
        now = time.monotonic()
        if now - self._last_sync >= FSYNC_EVERY_S:
            os.fsync(self._fh.fileno())
            self._last_sync = now

    def close(self) -> None:
        if self._fh.closed:
            return
        os.fsync(self._fh.fileno())
        self._fh.close()


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield every complete JSON line; a torn (unterminated or unparsable) last line is skipped."""
    with open(path, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return  # torn write at the end of the file
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_header(path: Path) -> dict[str, Any] | None:
    for record in read_lines(path):
        return record if record.get("schema") == SCHEMA else None
    return None
