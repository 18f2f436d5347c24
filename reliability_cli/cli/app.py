"""The typer application and its commands."""

from __future__ import annotations

from typing import Any, Optional

import typer

from .._version import __version__
from .common import set_debug

app = typer.Typer(
    name="relcheck",
    help="Measure the reliability of multi-step LLM pipelines, step by step, and gate CI on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"relcheck {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """relcheck: per-step reliability of LLM pipelines, with confidence intervals and CI gates."""
    set_debug(debug)


#: ``relcheck NAME`` → the module of this package that defines ``NAME_command`` (dashes as
#: underscores in the module name). Each command is registered the same way, in this order.
COMMANDS = (
    ("eval", "eval"),
    ("validate", "validate"),
    ("report", "report"),
    ("compare", "compare"),
    ("merge", "merge"),
    ("plan", "plan"),
    ("simulate", "simulate"),
    ("traces", "traces"),
    ("mock-server", "mockserver"),
    ("init", "init"),
    ("schema", "schema"),
    ("show", "show"),
    ("runs", "runs"),
    ("history", "history"),
)


def _argument_metavars_only() -> None:
    """An argument with a metavar is shown as that metavar alone: typer 0.2x appends its raw
    type name (``PIPELINE <str>``), which an option's metavar replaces but an argument's does not."""
    from typer import core

    shown = getattr(core.TyperArgument, "display_type", None)
    if shown is None or getattr(shown, "_relcheck", False):
        return

    def display_type(self: Any, ctx: Any) -> str:
        return "" if self.metavar else str(shown(self, ctx))

    display_type._relcheck = True  # type: ignore[attr-defined]
    core.TyperArgument.display_type = display_type  # type: ignore[method-assign]


def _register() -> None:
    from importlib import import_module

    for name, module in COMMANDS:
        command = getattr(import_module(f"{__package__}.{module}"), f"{module}_command")
        app.command(name)(command)
    app.add_typer(import_module(f"{__package__}.cache").cache_app)  # relcheck cache info|clear


_argument_metavars_only()
_register()
