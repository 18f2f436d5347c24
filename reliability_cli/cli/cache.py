"""``relcheck cache info|clear``: the response cache (``.relcheck/cache.sqlite`` or ``$RELCHECK_CACHE``)."""

from __future__ import annotations

import json

import typer

from .common import handle_errors, write_output

cache_app = typer.Typer(
    name="cache", help="The response cache of live endpoints: info, clear.", no_args_is_help=True, rich_markup_mode=None
)


def _path() -> str:
    from ..endpoints.cache import configured_path

    return configured_path()


@cache_app.command("info")
@handle_errors
def info_command(json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """Where the cache is, how many responses it holds and how big it is."""
    from ..endpoints.cache import cache_info

    info = cache_info(_path())
    if json_out:
        write_output("-", json.dumps(info, indent=2) + "\n")
        return
    if not info["exists"]:
        typer.echo(f"cache: {info['path']} (empty: no run has stored a response yet)")
        return
    typer.echo(f"cache: {info['path']}")
    typer.echo(
        f"  {info['entries']} response(s), {info['bytes'] / 1e6:.2f} MB, "
        f"from {info['oldest'] or '—'} to {info['newest'] or '—'}"
    )
    for row in info["by_endpoint"]:
        typer.echo(f"  {row['type']:<10} {row['host']:<30} {row['entries']}")


@cache_app.command("clear")
@handle_errors
def clear_command() -> None:
    """Delete every cached response."""
    from ..endpoints.cache import clear_cache

    path = _path()
    n = clear_cache(path)
    typer.echo(f"cache: {path}: deleted {n} response(s)")
