"""The attempts journal: ``attempts.jsonl``, appended and flushed line by line.

The first line is a header with the schema version and the hashes of the pipeline and eval
sets. Then one line per attempt and one ``{"unit_done": …}`` line per finished unit. Every
line is handed to the kernel when written (so a run killed with ``kill -9`` loses no finished
unit) and the file is fsynced at least once a second, off the event loop (so a power cut
loses at most about a second); a torn last line is dropped on resume.

A finished run's journal and its detail sidecar (``requests.jsonl``) are stored gzipped
(``attempts.jsonl.gz``) once they reach :data:`COMPRESS_MIN_BYTES` (:func:`compress_run`).
Every reader opens either form through :func:`open_stored`; the plain file, when it exists,
is the newer one and wins (see :func:`compress` for why that holds after a crash at any
point).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .safetext import JSON_ERRORS
from .scrub import scrub

if TYPE_CHECKING:
    import asyncio

SCHEMA = "relcheck.attempts/v1"
_clock = time.monotonic  # (a test replaces it without touching the event loop's clock)
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
        self._last_sync = _clock()
        self._syncing: asyncio.Future[None] | None = None
        self._sync_error: BaseException | None = None
        if new and header is not None:
            self.write({"schema": SCHEMA, **header})

    def write(self, record: dict[str, Any]) -> None:
        # a lone surrogate (from a case or a model's JSON) is written as its JSON escape (safetext)
        line = (scrub(_ENCODER.encode(record)) + "\n").encode("utf-8", JSON_ERRORS)
        try:
            written = self._fh.write(line)
            while written is not None and written < len(line):  # a short write (signals, full pipes)
                line = line[written:]
                written = self._fh.write(line)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        if self._sync_error is not None:
            raise self._sync_error
        now = _clock()
        if now - self._last_sync >= FSYNC_EVERY_S:
            self._last_sync = now
            self._sync()

    def _sync(self) -> None:
        """fsync without stalling the event loop: on a slow disk an fsync can take tens of
        milliseconds, which would be added to the latency of every request in flight. Inside
        a running loop it runs in the default executor (one at a time); otherwise here."""
        import asyncio  # (loaded already whenever a loop runs)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            os.fsync(self._fh.fileno())
            return
        if self._syncing is not None and not self._syncing.done():
            return  # the one in flight covers what was written before it started
        self._syncing = loop.run_in_executor(None, os.fsync, self._fh.fileno())
        self._syncing.add_done_callback(self._synced)

    def _synced(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            self._sync_error = done.exception()  # raised by the next write or by close

    def close(self) -> None:
        """fsync and close. Call it after the event loop is gone (``asyncio.run`` waits for
        the executor, so no background fsync is still running)."""
        if self._fh.closed:
            return
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self._sync_error is not None:
            raise self._sync_error


def _cannot_write(path: Path, exc: OSError) -> Exception:
    """A full or failing disk is the environment, not a bug: exit 2, and say how to go on."""
    from .errors import Location, ResultsError

    full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    return ResultsError(
        f"cannot write the journal: {exc.strerror or exc}{full}",
        Location(str(path)),
        hint=f"every finished unit is saved; fix the disk, then continue with --resume {path.parent}",
    )


GZ = ".gz"
#: a finished run's journal (or sidecar) is compressed from this size on: below it the plain
#: file costs a few disk blocks and stays greppable
COMPRESS_MIN_BYTES = 256 * 1024
STORED_NAMES = ("attempts.jsonl", "requests.jsonl")  # the run files compress_run compresses
#: gzip's fastest level: about 110 MB/s here and 24x smaller for the six-step set's journal
#: (level 6: 34x, but half the speed — seconds at the end of a 100,000-case run)
LEVEL = 1


def gz_path(path: Path) -> Path:
    """The compressed form of ``path`` (``attempts.jsonl`` → ``attempts.jsonl.gz``)."""
    return path.with_name(path.name + GZ)


def stored_path(path: Path) -> Path | None:
    """The file that holds ``path``'s lines: ``path`` itself, else ``path.gz``, else None."""
    if path.exists():
        return path
    gz = gz_path(path)
    return gz if gz.exists() else None


def is_stored(path: Path) -> bool:
    """Whether ``path`` exists in either form."""
    return stored_path(path) is not None


def open_stored(path: Path) -> IO[bytes]:
    """Open ``path`` for reading in whichever form is stored: plain, else gzipped.

    The plain file wins when both exist (a crash between writing one and removing the other
    leaves both; the plain one is never older). A compression finishing between the check and
    the open is caught: the plain file is gone, the compressed one is complete.

    Raises:
        FileNotFoundError: neither form exists.
    """
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        gz = gz_path(path)
        if not gz.exists():
            raise
        return gzip.open(gz, "rb")  # type: ignore[return-value]  # (a GzipFile reads as IO[bytes])


def fsync_dir(directory: Path) -> None:
    """fsync a directory, so that a rename or removal in it is durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(target: Path, fill: Any) -> None:
    """``fill(fh)`` into ``target.tmp`` (binary), fsync, rename over ``target``, fsync the
    directory: a reader never sees half a file, and a kill leaves the old one."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            fill(raw)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_json(path: Path, data: Any) -> None:
    """A small JSON document (a manifest), indented, written with :func:`write_atomically`;
    a lone surrogate is written as its JSON escape."""

    def fill(raw: IO[bytes]) -> None:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        raw.write(text.encode("utf-8", JSON_ERRORS))

    write_atomically(path, fill)


def compress(path: Path) -> Path | None:
    """Replace ``path`` by ``path.gz``, crash-safe; returns the compressed file.

    The compressed file is written to ``path.gz.tmp``, fsynced and renamed into place, and
    only then is the plain file removed. A kill at any point leaves the plain file (with a
    stray ``.tmp`` that resume cleans up), or both complete forms (the plain one is read), or
    the compressed one alone. None when there is no plain file.
    """
    if not path.exists():
        return None

    def fill(raw: IO[bytes]) -> None:
        with (
            open(path, "rb") as src,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=LEVEL, mtime=0) as z,
        ):
            shutil.copyfileobj(src, z, 1 << 20)

    gz = gz_path(path)
    write_atomically(gz, fill)
    path.unlink()
    fsync_dir(path.parent)
    return gz


def decompress(path: Path) -> None:
    """Bring ``path`` back as a plain file (for a resume to append to), crash-safe.

    When the plain file exists it is the newer form (or the same lines) and a ``.gz`` beside
    it is stale: it is removed. Else ``path.gz`` is written out to ``path.tmp``, fsynced and
    renamed to ``path``, and then removed.
    """
    gz = gz_path(path)
    if path.exists():
        gz.unlink(missing_ok=True)
        return
    if not gz.exists():
        return

    def fill(raw: IO[bytes]) -> None:
        with gzip.open(gz, "rb") as src:
            shutil.copyfileobj(src, raw, 1 << 20)

    write_atomically(path, fill)
    gz.unlink()
    fsync_dir(path.parent)


def compress_run(run_dir: Path, min_bytes: int | None = None) -> list[Path]:
    """Compress a finished run's journal and sidecar (each once it has ``min_bytes``).

    Call it only while holding the run's lock, after ``results.json`` is written. A failure
    (a full disk) leaves the plain files, which every reader reads as well: the run is not
    failed for it.

    Returns:
        The compressed files written.
    """
    limit = COMPRESS_MIN_BYTES if min_bytes is None else min_bytes
    done: list[Path] = []
    for name in STORED_NAMES:
        path = run_dir / name
        try:
            if path.exists() and path.stat().st_size >= limit:
                gz = compress(path)
                if gz is not None:
                    done.append(gz)
        except OSError:
            continue
    return done


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield every complete JSON line; a torn (unterminated or unparsable) last line is skipped.

    Raises:
        ResultsError: a line that is not a JSON object with more lines after it (a journal
            edited or damaged by hand: dropping it silently would change the results).
    """
    for _number, _raw, record in iter_records(path):
        yield record


def iter_records(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """Each complete line's number, bytes and record (see :func:`read_lines`).

    Lines are split and decoded as bytes, one at a time: a torn tail is a torn line whatever
    its bytes, even when the kill came in the middle of a multi-byte character. ``path`` is
    read in its stored form (:func:`open_stored`).
    """
    garbled: int | None = None
    with open_stored(path) as fh:
        for number, raw in enumerate(_lines(fh, path), 1):
            if garbled is not None:
                from .errors import Location, ResultsError

                raise ResultsError(
                    "line is not a journal record (garbled or edited), and lines follow it: "
                    "the journal cannot be trusted",
                    Location(str(path), garbled),
                    hint="restore the file, or start a new run",
                )
            if not raw.endswith(b"\n"):
                return  # torn write at the end of the file
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                garbled = number  # the last complete line may be torn too; only a later line proves damage
                continue
            if not isinstance(record, dict):
                garbled = number
                continue
            yield number, raw, record


def _lines(fh: IO[bytes], path: Path) -> Iterator[bytes]:
    """The lines of ``fh``; a damaged compressed file is bad input (exit 2), not a traceback."""
    it = iter(fh)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except (OSError, EOFError, zlib.error) as exc:  # (gzip.BadGzipFile is an OSError)
            from .errors import Location, ResultsError

            raise ResultsError(
                f"cannot read the journal: {exc}",
                Location(str(getattr(fh, "name", None) or path)),
                hint="restore the file, or start a new run",
            ) from None
        yield raw


def read_header(path: Path) -> dict[str, Any] | None:
    for record in read_lines(path):
        return record if record.get("schema") == SCHEMA else None
    return None
