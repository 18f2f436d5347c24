"""``relcheck schema`` describes graph pipelines; ``validate`` checks their templates' vars."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.helpers import ROOT

PIPELINE = ROOT / "evalsets" / "langgraph-agent" / "pipeline.yaml"


def test_the_schema_accepts_the_bundled_graph_pipeline_and_refuses_typos(cli) -> None:
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    from reliability_cli.config.yamlpos import load_yaml
    from reliability_cli.errors import ConfigError

    data, _ = load_yaml(PIPELINE.read_text(encoding="utf-8"), str(PIPELINE), error=ConfigError)
    jsonschema.validate(data, schema)
    assert {"graph", "final"} <= set(schema["properties"])
    for bad in (
        {"graph": {**data["graph"], "recursion_limt": 3}},
        {"graph": {**data["graph"], "type": "crewai"}},
        {"final": {"check": []}},
    ):
        try:
            jsonschema.validate({**data, **bad}, schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"the schema accepted {bad}")


def test_validate_counts_the_bundled_set_and_checks_input_vars(cli, tmp_path: Path) -> None:
    code, out, err = cli("validate", PIPELINE)
    assert code == 0, err
    assert "6 steps, 300 cases, 300 units" in out
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "x", "vars": {"ticket": "t", "customer": "c", "account_id": "a"}}) + "\n")
    code, _, err = cli("validate", PIPELINE, "--evalset", cases)
    assert code == 2 and "case 'x' has no vars.product" in err
