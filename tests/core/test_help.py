"""Every command's --help names what an option takes (``--evalset FILE``), never the Python
type behind it (``<list[str]>``, ``<int range>``; issue 11, item 9)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

RAW_TYPE = re.compile(r"<(?:str|int|float|bool|path|list\[[^>]*\]|\w+ range)>|\b(?:TEXT|INTEGER|FLOAT)\b")


def _commands() -> Iterator[tuple[list[str], Any]]:
    from reliability_cli.cli import app

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        commands = getattr(command, "commands", None)  # typer may vendor its own click
        if commands is not None:
            for name, sub in commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), [])


COMMANDS = [path for path, _ in _commands()]


def test_every_command_is_covered() -> None:
    assert {"eval", "validate", "merge", "traces", "mock-server"} <= {p[0] for p in COMMANDS}
    assert ["cache", "info"] in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_metavars_not_type_names(cli, path: list[str]) -> None:
    code, out, _ = cli(*path, "--help", env={"COLUMNS": "200"})
    assert code == 0
    assert not RAW_TYPE.findall(out), out


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_value_taking_parameter_has_a_metavar(path: list[str]) -> None:
    command = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    for param in command.params:
        if getattr(param, "is_flag", False):
            continue
        assert param.metavar and param.metavar[0].isupper(), (path, param.name)


def test_eval_help_reads_as_the_readme_does(cli) -> None:
    code, out, _ = cli("eval", "--help", env={"COLUMNS": "200"})
    assert code == 0
    for shown in ("--evalset FILE", "--json FILE", "--endpoint NAME=mock", "--min-step STEP=RATE", "--shard I/N"):
        assert shown in out
    assert re.search(r"^  PIPELINE +The pipeline", out, re.M)
