"""The typer application and its commands."""

from __future__ import annotations

from typing import Optional

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
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """relcheck: per-step reliability of LLM pipelines, with confidence intervals and CI gates."""
    set_debug(debug)


def _register() -> None:
    from . import eval as eval_cmd
    from . import misc, validate

    app.command("eval")(eval_cmd.eval_command)
    app.command("validate")(validate.validate_command)
    app.command("merge")(__import__(f"{__package__}.merge", fromlist=["merge_command"]).merge_command)
    misc.register(app)
    app.command("compare")(__import__(f"{__package__}.compare", fromlist=["compare_command"]).compare_command)
    app.command("plan")(__import__(f"{__package__}.plan", fromlist=["plan_command"]).plan_command)
    app.command("mock-server")(__import__(f"{__package__}.mockserver", fromlist=["x"]).mock_server_command)


_register()
