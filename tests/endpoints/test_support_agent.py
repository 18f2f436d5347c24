"""The bundled evalsets/support-agent runs offline from its committed cassette."""

from __future__ import annotations

import json

from reliability_cli.runner import RunOptions
from reliability_cli.runner.validation import validate

from ..helpers import ROOT
from .helpers import free_port, run, step

SET = ROOT / "evalsets" / "support-agent"
CASSETTE = SET / "cassette.jsonl"


def offline_env() -> dict[str, str]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: any real request would fail
    return {"OPENAI_BASE_URL": dead + "/v1", "ANTHROPIC_BASE_URL": dead, "ACCOUNTS_URL": dead + "/v1/chat/completions"}


def test_support_agent_validates_for_replay_without_keys():
    found = validate(str(SET / "pipeline.yaml"), RunOptions(replay=str(CASSETTE), environ=offline_env()))
    assert (found.cases, found.steps) == (40, 4)


def test_support_agent_replays_offline(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    results = run(SET / "pipeline.yaml", tmp_path / "out", replay=str(CASSETTE), environ=offline_env())
    assert results["exit_code"] == 0 and results["verdict"] == "pass"
    assert (results["end_to_end"]["passed"], results["end_to_end"]["total"]) == (31, 40)
    kinds = {k for s in results["steps"] for k in s["error_kinds"]}
    assert "replay_miss" not in kinds and {"http_500", "protocol", "parse"} <= kinds
    assert sum(s["throttled"] for s in results["steps"]) > 0
    assert step(results, "self_check")["failed"] == 2  # the judge failed two drafts
    assert all(s["cost_usd"] is not None for s in results["steps"] if s["id"] != "retrieve")


def test_support_agent_cassette_holds_no_secrets_or_redacted_fields():
    text = CASSETTE.read_text()
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[0]["relcheck_cassette"] == 1
    assert "CUST-" not in text and "customer_id" not in text
    for header in ("authorization", "x-api-key", "not-a-key"):
        assert header not in text.lower()
    assert {x["endpoint"] for x in lines[1:]} == {"llm", "writer", "accounts", "judge"}
    assert all(x["url"].startswith("http://127.0.0.1:8000/") for x in lines[1:])
