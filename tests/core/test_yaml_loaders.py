"""libyaml's parser (used when PyYAML has it) and the pure-Python one give the same data, the
same positions and the same error places, so no user sees a difference between machines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reliability_cli.config import yamlpos
from reliability_cli.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    [
        *ROOT.glob("evalsets/*/pipeline.yaml"),
        *ROOT.glob("tests/corpus/**/*.yaml"),
        *ROOT.glob("reliability_cli/scaffold/*.yaml"),
    ]
)
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if getattr(yaml, "__with_libyaml__", False) else [])

TRICKY = """\
on: {no: off, yes: y}            # keys stay strings
"0123": 0123
list: [1.10, 1e3, .5, ~, "quoted", 'single', 2026-11-25]
block: |
  two
  lines
"""


def load(text: str, loader: type, data_scalars: bool = False) -> object:
    saved = yamlpos._LOADER
    yamlpos._LOADER = loader
    try:
        data, positions = yamlpos.load_yaml(text, "f.yaml", error=ConfigError, data_scalars=data_scalars)
        return data, positions.values, positions.keys
    except ConfigError as exc:
        return exc.location, exc.message.split(":")[0]
    finally:
        yamlpos._LOADER = saved


def test_the_default_is_libyaml_when_pyyaml_has_it():
    assert yamlpos._LOADER is LOADERS[-1]


@pytest.mark.skipif(len(LOADERS) < 2, reason="PyYAML without libyaml: one loader only")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_parsers_agree_on_every_bundled_and_corpus_file(path):
    text = path.read_text(encoding="utf-8")
    python, libyaml = (load(text, loader) for loader in LOADERS)
    assert python == libyaml


@pytest.mark.skipif(len(LOADERS) < 2, reason="PyYAML without libyaml: one loader only")
@pytest.mark.parametrize("data_scalars", [False, True])
def test_both_parsers_agree_on_plain_scalars_and_keys(data_scalars):
    python, libyaml = (load(TRICKY, loader, data_scalars) for loader in LOADERS)
    assert python == libyaml
    data = python[0]
    assert set(data) == {"on", "0123", "list", "block"} and set(data["on"]) == {"no", "yes"}
