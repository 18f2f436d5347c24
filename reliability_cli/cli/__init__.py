"""The ``relcheck`` command line: one module per command, each a thin shell over the core."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from .app import app


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="relcheck")
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            # Interrupted (Ctrl-C, SIGTERM): the journal, the run's files and the message are
            # written and closed; tearing down the interpreter would take another 0.1-1 s of
            # the 2 s a stop may take, and threads may still be winding down.
            _flush()
            os._exit(INTERRUPTED)
        code = 0 if exc.code is None else exc.code
        if isinstance(code, int) and threading.active_count() == 1:
            _exit_now(code)
        raise


def _exit_now(code: int) -> None:
    """End the process as Python would, minus the interpreter's teardown.

    The command has finished: every file it wrote is closed (the writers use ``with``).
    What is left of a normal exit is the ``atexit`` handlers — run here, so temporary folders
    are removed, logging is flushed and coverage is saved — and the freeing of every module
    and object one by one, 0.1-0.15 s for what ``eval`` imports, which a process about to
    vanish does not need. Only this entry point does it, and only with no other thread alive:
    an embedding caller (typer's test runner, a Python user) gets the exit as usual.
    """
    _flush()
    atexit._run_exitfuncs()
    _flush()
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a stream already closed
            pass


INTERRUPTED = 130


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
