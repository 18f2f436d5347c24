"""Checks inside a real run: native template values, python errors, a judge endpoint."""

from __future__ import annotations

import json
import textwrap

from reliability_cli.results.schema import GateOverrides
from reliability_cli.runner import RunOptions, run_eval

MODULE = """
def has_total(output, context):
    return (output.get("total") == context["value"], f"total is {output.get('total')}")

def crash(output, context):
    raise KeyError("nope")
"""


def _run(tmp_path, monkeypatch, steps: str, cases: list[dict]) -> dict:
    (tmp_path / "relcheck_pipeline_checks.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        textwrap.dedent("""\
        version: 1
        name: checks
        endpoints:
          sim: {type: mock, reply: "{{ expect[step.id] }}"}
          judge: {type: mock, reply: '{"pass": true, "reason": "polite"}'}
        steps:
        """)
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    evalset = tmp_path / "c.jsonl"
    evalset.write_text("".join(json.dumps(c) + "\n" for c in cases))
    options = RunOptions(
        evalsets=[str(evalset)], out=str(tmp_path / "run"), gate_overrides=GateOverrides(max_error_rate=1.0)
    )
    return run_eval(str(pipeline), options).results.to_dict()


def test_structured_checks_and_judge(tmp_path, monkeypatch):
    results = _run(
        tmp_path,
        monkeypatch,
        """\
        - id: label
          endpoint: sim
          prompt: "{{ vars.q }}"
          checks:
            - {type: one-of, value: "{{ vars.options }}"}
            - {type: llm-rubric, endpoint: judge, rubric: "The label is polite"}
        - id: order
          endpoint: sim
          prompt: "{{ vars.q }}"
          checks:
            - {type: json-path, path: "$.items[0].name", value: "{{ expect.name }}"}
            - {type: python, callable: "relcheck_pipeline_checks:has_total", value: "{{ vars.total }}"}
        """,
        [
            {
                "id": "ok",
                "vars": {"q": "x", "options": ["tech", "billing"], "total": 3},
                "expect": {"label": "tech", "order": {"items": [{"name": "pen"}], "total": 3}, "name": "pen"},
            },
            {
                "id": "bad",
                "vars": {"q": "x", "options": ["tech", "billing"], "total": 3},
                "expect": {"label": "billing", "order": {"items": [{"name": "ink"}], "total": 3}, "name": "pen"},
            },
            {
                "id": "label",
                "vars": {"q": "x", "options": ["tech"], "total": 3},
                "expect": {"label": "other", "order": {}, "name": "pen"},
            },
        ],
    )
    units = {u["case"]: u for u in results["units"]}
    assert units["ok"]["passed"] is True
    assert units["bad"]["outcome"] == "fail" and units["bad"]["failed_step"] == "order"
    assert units["label"]["failed_step"] == "label"
    reasons = {s["id"]: [f["reason"] for f in s["failures"]] for s in results["steps"]}
    assert reasons["label"] == ['one-of: expected one of ["tech"], got "other"']
    assert reasons["order"] == ['json-path: at $.items[0].name: expected "pen", got "ink"']


def test_python_check_exception_is_an_error_of_kind_exception(tmp_path, monkeypatch):
    results = _run(
        tmp_path,
        monkeypatch,
        """\
        - id: a
          endpoint: sim
          prompt: "{{ vars.q }}"
          checks:
            - {type: python, callable: "relcheck_pipeline_checks:crash"}
        """,
        [{"id": "1", "vars": {"q": "x"}, "expect": {"a": "y"}}],
    )
    unit = results["units"][0]
    assert unit["outcome"] == "error" and unit["error_kind"] == "exception"
    assert "raised KeyError" in results["steps"][0]["failures"][0]["reason"]
