"""What every command shares: error reporting, exit codes, the stderr console."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..errors import RelcheckError

F = TypeVar("F", bound=Callable[..., Any])
DEBUG = {"on": bool(os.environ.get("RELCHECK_DEBUG"))}


def set_debug(value: bool) -> None:
    """``--debug`` for this invocation (the root callback sets it on every call, so an embedding
    caller's earlier ``--debug`` does not leak into the next command)."""
    DEBUG["on"] = bool(value)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one paragraph on stderr and return the Exit to raise."""
    from ..safetext import terminal
    from ..scrub import scrub

    sys.stderr.write(
        f"relcheck: error: {terminal(scrub(message))}\n"
    )  # ids and values from files are shown, not obeyed
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn expected errors into a message and an exit code; tracebacks only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("debug"):
            set_debug(True)
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except RelcheckError as exc:
            if DEBUG["on"]:
                traceback.print_exc()
            raise fail(exc.render(), exc.exit_code) from None
        except OSError as exc:  # the environment (full disk, read-only or denied path), not a bug
            if DEBUG["on"]:
                traceback.print_exc()
            raise fail(os_message(exc), 2) from None
        except KeyboardInterrupt:
            sys.stderr.write("relcheck: interrupted\n")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug in relcheck, not bad input
            if DEBUG["on"]:
                traceback.print_exc()
            raise fail(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "  this is a bug in relcheck; rerun with --debug for the traceback",
                3,
            ) from None

    return wrapper  # type: ignore[return-value]


def os_message(exc: OSError) -> str:
    """One line for an operating-system failure: the path and what the system said."""
    what = exc.strerror or type(exc).__name__
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{where}{what}" + (" (the disk is full)" if exc.errno == 28 else "")


def write_output(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (``-`` for stdout), every secret masked; a lone surrogate
    becomes U+FFFD (the JSON report has escaped its own already: see :mod:`reliability_cli.safetext`)."""
    from ..safetext import TEXT_ERRORS, no_surrogates
    from ..scrub import scrub

    text = scrub(text)
    if path == "-":
        sys.stdout.write(no_surrogates(text))
        return
    from pathlib import Path

    target = Path(path)
    try:
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors=TEXT_ERRORS)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
