"""The `python` endpoint: a trusted callable named in the pipeline, sync or async."""

from __future__ import annotations

import json
import textwrap

from reliability_cli.results.schema import GateOverrides
from reliability_cli.runner import RunOptions, run_eval

MODULE = """
import asyncio

def lookup(ctx):
    if ctx["vars"]["q"] == "boom":
        raise ValueError("no account for boom")
    return {"account": ctx["vars"]["q"].upper(), "step": ctx["step"]["id"]}

async def shout(ctx):
    await asyncio.sleep(0)
    return ctx["steps"]["lookup"]["output"]["account"] + "!"
"""


def test_python_endpoint_chain(tmp_path, monkeypatch):
    (tmp_path / "mytools.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    p = tmp_path / "p.yaml"
    p.write_text(
        textwrap.dedent("""\
        version: 1
        name: py
        endpoints:
          tools: {type: python, callable: "mytools:lookup"}
          loud: {type: python, callable: "mytools:shout"}
        steps:
          - id: lookup
            endpoint: tools
            checks: [{type: json-path, path: "$.account", value: "{{ expect.account }}"}]
          - id: shout
            endpoint: loud
            prompt: "{{ steps.lookup.output.account }}"
            checks: [{type: equals, value: "{{ expect.account }}!"}]
        """)
    )
    e = tmp_path / "c.jsonl"
    e.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "vars": {"q": "acme"}, "expect": {"account": "ACME"}},
                {"id": "b", "vars": {"q": "boom"}, "expect": {"account": "BOOM"}},
            ]
        )
        + "\n"
    )
    r = run_eval(
        str(p), RunOptions(evalsets=[str(e)], out=str(tmp_path / "r"), gate_overrides=GateOverrides(max_error_rate=1.0))
    ).results.to_dict()
    units = {u["case"]: u for u in r["units"]}
    assert units["a"]["passed"] is True
    assert units["b"]["outcome"] == "error" and units["b"]["error_kind"] == "exception"
    assert r["steps"][1]["reached"] == 1
    failure = r["steps"][0]["failures"][0]
    assert "no account for boom" in failure["reason"]
