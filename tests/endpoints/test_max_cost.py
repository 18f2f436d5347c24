"""--max-cost stops scheduling once the spent cost reaches it (exit 3), and prices give cost_usd."""

from __future__ import annotations

import json
import textwrap

from reliability_cli.mockserver import FaultConfig, run_in_thread
from reliability_cli.runner import RunOptions, run_eval


def test_max_cost_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RELCHECK_TEST_KEY", "sk-test-cost")
    with run_in_thread(FaultConfig()) as server:
        p = tmp_path / "p.yaml"
        p.write_text(
            textwrap.dedent(f"""\
            version: 1
            name: cost
            endpoints:
              llm:
                type: openai
                base_url: {server.base_url}/v1
                model: m
                api_key_env: RELCHECK_TEST_KEY
                price: {{input: 1000000, output: 1000000}}   # 1 USD per token
            steps:
              - id: a
                endpoint: llm
                prompt: "REPLY: ok"
                checks: [{{type: equals, value: ok}}]
            """)
        )
        e = tmp_path / "c.jsonl"
        e.write_text("".join(json.dumps({"id": f"c{i}"}) + "\n" for i in range(200)))
        free = run_eval(str(p), RunOptions(evalsets=[str(e)], out=str(tmp_path / "free"), limit=5))
        per_unit = free.results.to_dict()["run"]["cost_usd"] / 5
        step = free.results.to_dict()["steps"][0]
        assert per_unit == (step["tokens"]["input"] + step["tokens"]["output"]) / 5 > 0
        capped = run_eval(
            str(p), RunOptions(evalsets=[str(e)], out=str(tmp_path / "capped"), concurrency=1, max_cost=per_unit * 10)
        )
    assert capped.exit_code == 3 and capped.results.to_dict()["verdict"] == "error"
    assert capped.results.to_dict()["run"]["stop_reason"] == "max_cost"
    assert 10 <= capped.results.to_dict()["end_to_end"]["total"] <= 11
    assert capped.results.to_dict()["run"]["cost_usd"] >= per_unit * 10
