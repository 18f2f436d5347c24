"""Errors relcheck raises for bad input and failed runs.

Every error a user can cause derives from :class:`RelcheckError` and carries a message,
an optional :class:`Location` (file, line, column, key path) and an optional hint. The CLI
turns any of them into one paragraph on stderr and an exit code; ``--debug`` adds the
traceback.

    RelcheckError                  exit 2 unless noted
    ├── ConfigError                pipeline YAML: syntax, unknown key, wrong type, env var
    ├── EvalSetError               eval set: syntax, malformed row, duplicate id
    ├── TemplateError              a template that does not compile or names nothing known
    ├── ResultsError               a results.json / run directory that cannot be read
    ├── TracesError                a traces file (OTLP, LangSmith, Langfuse) with a malformed record
    ├── UsageError                 a bad combination of flags
    └── RunAborted                 exit 3: the run cannot give a trustworthy verdict

Per-attempt failures (a timeout, a wrong answer) are *data*, recorded in the journal, and
never raised through the runner: see :mod:`reliability_cli.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where in a user's file something is.

    Attributes:
        file: The file's path as the user gave it.
        line: 1-based line.
        column: 1-based column.
        key: Dotted key path, e.g. ``steps[0].checks[1].value``.
    """

    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    key: str | None = None  # dotted key path, e.g. ``steps[0].checks[1].value``

    def __str__(self) -> str:
        parts = []
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.key:
            parts.append(f"at {self.key}")
        return " ".join(parts)


@dataclass(eq=False)
class RelcheckError(Exception):
    """Root of every error relcheck reports to a user."""

    message: str
    location: Location | None = None
    hint: str | None = None
    exit_code: int = field(default=2, kw_only=True)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.render())

    def render(self) -> str:
        """The message as printed: ``file:line:col at key: message``, and the hint below it."""
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


class ConfigError(RelcheckError):
    """The pipeline file is invalid."""


class EvalSetError(RelcheckError):
    """An eval set is invalid."""


class TemplateError(RelcheckError):
    """A template in the pipeline file does not compile or names something unknown."""


class ResultsError(RelcheckError):
    """A results file or run directory cannot be read or used."""


class TracesError(RelcheckError):
    """A traces file cannot be read, or holds a malformed record (``relcheck traces``)."""


class UsageError(RelcheckError):
    """A bad combination of command-line options."""


class RunAborted(RelcheckError):
    """The run stopped before it could give a trustworthy verdict (exit 3)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, None, hint, exit_code=3)


class MultipleErrors(RelcheckError):
    """Several independent problems found in one pass (all reported at once)."""

    def __init__(self, errors: list[RelcheckError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)
