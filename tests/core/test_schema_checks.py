"""``relcheck schema`` describes checks as a union keyed on ``type``, each with its own keys,
so that editors complete check types and their keys (issue 11, item 9)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import ROOT

PIPELINES = sorted((ROOT / "evalsets").glob("*/pipeline.yaml")) + [
    ROOT / "reliability_cli" / "scaffold" / "pipeline.yaml"
]


def _schema() -> dict[str, Any]:
    from reliability_cli.config import json_schema

    return json_schema()


def _load(path: Path) -> Any:
    """The pipeline as data, read as relcheck reads it (``on:`` is a key, not ``True``)."""
    from reliability_cli.config.yamlpos import load_yaml
    from reliability_cli.errors import ConfigError

    return load_yaml(path.read_text(encoding="utf-8"), str(path), error=ConfigError)[0]


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


def test_the_schema_is_valid_under_the_draft_it_declares(cli) -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)  # against the 2020-12 meta-schema
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out) == schema


def test_checks_are_a_union_keyed_on_type_with_each_types_keys() -> None:
    from reliability_cli.checks.registry import REGISTRY, resolve, type_names

    schema = _schema()
    for model in ("Step", "FinalConfig"):
        assert schema["$defs"][model]["properties"]["checks"]["items"] == {"$ref": "#/$defs/Check"}
    check = schema["$defs"]["Check"]
    assert check["properties"]["type"]["enum"] == type_names()
    variants = {v["properties"]["type"]["const"]: v for v in check["oneOf"]}
    assert list(variants) == type_names() and "not-regex" in variants and "llm-rubric" in REGISTRY
    for name, variant in variants.items():
        entry, _ = resolve(name)  # type: ignore[misc]
        assert set(variant["properties"]) == {"type"} | set(entry.keys), name
        assert set(variant["required"]) == {"type"} | set(entry.required), name
        assert variant["additionalProperties"] is False and variant["description"]


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.parent.name)
def test_every_bundled_pipeline_validates(path: Path) -> None:
    errors = [e.message for e in _validator().iter_errors(_load(path))]
    assert errors == []


def _with_check(check: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(_load(ROOT / "evalsets" / "six-step-agent" / "pipeline.yaml"))
    doc["steps"][0]["checks"] = [check]
    return doc


@pytest.mark.parametrize(
    "check",
    [
        {"type": "equals", "valu": "x"},  # a misspelt key
        {"type": "contains", "value": "x", "threshold": 0.5},  # a key of another check type
        {"type": "json-path"},  # a required key missing
        {"type": "regexp", "value": "x"},  # no such type
        {"type": "similar", "value": "x", "threshold": 2},  # out of range
        {"type": "equals", "value": "x", "normalize": ["upper"]},  # no such normalize step
        {"type": "not-llm-rubric", "endpoint": "judge", "rubric": "r"},  # model-graded: no not- form
    ],
)
def test_a_wrong_check_does_not_validate(check: dict[str, Any]) -> None:
    errors = list(_validator().iter_errors(_with_check(check)))
    assert errors, check
    assert any(list(e.absolute_path)[:4] == ["steps", 0, "checks", 0] for e in errors)


@pytest.mark.parametrize(
    "check",
    [
        {"type": "equals", "value": "x", "normalize": ["strip", "lower"]},
        {"type": "not-contains", "value": "{{ vars.q }}"},
        {"type": "json-path", "path": "$.a", "value": 3},
        {"type": "tool-call", "name": "lookup", "arguments": {"id": 1}},
        {"type": "latency", "max_ms": 500},
        {"type": "python", "callable": "pkg.mod:check"},
        {"type": "llm-rubric", "endpoint": "judge", "rubric": "polite"},
    ],
)
def test_a_right_check_validates(check: dict[str, Any]) -> None:
    assert [e.message for e in _validator().iter_errors(_with_check(check))] == []


def test_the_schema_agrees_with_the_loader_on_the_checks_it_tests() -> None:
    """The registry refuses what the schema refuses (so the schema never invents a rule)."""
    from reliability_cli.checks import validate_spec

    assert validate_spec({"type": "equals", "valu": "x"})
    assert validate_spec({"type": "json-path"})
    assert not validate_spec({"type": "latency", "max_ms": 500})
