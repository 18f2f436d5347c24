"""Record and replay (SPEC §9), and keeping API keys out of everything a run writes.

Traffic goes to the mock server (or a tiny echo server) on 127.0.0.1 only. A replay runs with
the endpoints pointed at a port where nothing listens and with no API key set.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from reliability_cli.config.models import OpenAIEndpoint
from reliability_cli.endpoints import AttemptError, AttemptKey, Request
from reliability_cli.endpoints.cassette import Recorder, Replayer, canonical, redact, safe_url
from reliability_cli.endpoints.http import build
from reliability_cli.endpoints.transport import Exchange
from reliability_cli.mockserver import FaultConfig, run_in_thread

from .endpoints.helpers import (
    free_port,
    http_response,
    raw_server,
    read_request,
    run,
    step,
    write_pipeline,
)
from .helpers import journal_text, run_relcheck, strip_volatile

TOOLS_REPLY = '{"plan": "{{ vars.plan }}", "tier": 2}'


def support_pipeline() -> dict:
    """classify (openai) → lookup (http tool) → draft (anthropic) with an llm-rubric judge."""
    base = "${MOCK_URL}"
    return {
        "name": "rr",
        "endpoints": {
            "llm": {
                "type": "openai",
                "base_url": base + "/v1",
                "model": "gpt-test",
                "api_key_env": "RR_OPENAI_KEY",
                "timeout_s": 2,
                "redact": ["user"],
                "params": {"user": "{{ vars.user }}"},
            },
            "tool": {
                "type": "http",
                "url": base + "/v1/chat/completions",
                "redact": ["user_id"],
                "json": {
                    "model": "db",
                    "user_id": "{{ vars.user }}",
                    "messages": [{"role": "user", "content": "REPLY: " + TOOLS_REPLY}],
                },
                "output_path": "choices[0].message.content",
            },
            "claude": {
                "type": "anthropic",
                "base_url": base,
                "model": "claude-test",
                "api_key_env": "RR_ANTHROPIC_KEY",
            },
            "judge": {"type": "openai", "base_url": base + "/v1", "model": "judge", "api_key_env": "RR_OPENAI_KEY"},
        },
        "defaults": {"retry": {"max_attempts": 3, "backoff": {"initial_s": 0, "max_s": 0}}},
        "steps": [
            {
                "id": "classify",
                "endpoint": "llm",
                "prompt": [
                    {"role": "system", "content": "One word."},
                    {"role": "user", "content": "{{ vars.ticket }}\nREPLY: {{ vars.label }}"},
                ],
                "checks": [{"type": "equals", "value": "{{ expect.classify }}"}],
            },
            {
                "id": "lookup",
                "endpoint": "tool",
                "parse": "json",
                "checks": [{"type": "json-path", "path": "$.plan", "value": "{{ vars.plan }}"}],
            },
            {
                "id": "draft",
                "endpoint": "claude",
                "prompt": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hi {{ vars.name }} ({{ steps.lookup.output.plan }})"},
                ],
                "checks": [
                    {"type": "contains", "value": "{{ vars.name }}"},
                    {
                        "type": "llm-rubric",
                        "endpoint": "judge",
                        "rubric": 'Polite.\nREPLY: {"pass": true, "reason": "polite"}',
                    },
                ],
            },
        ],
    }


def support_cases(n: int) -> list[dict]:
    return [
        {
            "id": f"t{i}",
            "vars": {
                "ticket": f"ticket {i}",
                "label": "billing" if i % 5 else "tech",
                "plan": "pro",
                "user": f"user-{i:04d}",
                "name": f"Name{i}",
            },
            "expect": {"classify": "billing"},
        }
        for i in range(n)
    ]


FAULTS = FaultConfig(
    status_rates={500: 0.06, 429: 0.06}, retry_after=0.01, drop_rate=0.04, malformed_rate=0.04, fail_rate=0.03, seed=9
)


def test_replay_gives_the_same_results_offline_without_keys(tmp_path, monkeypatch):
    path = write_pipeline(tmp_path / "p", support_pipeline(), support_cases(30))
    cassette = tmp_path / "cassette.jsonl"
    monkeypatch.setenv("RR_OPENAI_KEY", "sk-test-" + secrets.token_hex(8))
    monkeypatch.setenv("RR_ANTHROPIC_KEY", "ak-test-" + secrets.token_hex(8))
    with run_in_thread(FAULTS) as server:
        monkeypatch.setenv("MOCK_URL", server.base_url)
        recorded = run(path, tmp_path / "rec", record=str(cassette), trials=2, isolate=True, concurrency=8)
        injected = dict(server.counts)

    monkeypatch.delenv("RR_OPENAI_KEY")
    monkeypatch.delenv("RR_ANTHROPIC_KEY")
    monkeypatch.setenv("MOCK_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: no network
    replayed = run(path, tmp_path / "rep", replay=str(cassette), trials=2, isolate=True, concurrency=3)

    # The recorded run really saw the faults, and they replay identically.
    kinds = {k for s in recorded["steps"] for k in s["error_kinds"]}
    assert {"http_500", "protocol", "parse"} <= kinds, kinds
    assert sum(s["throttled"] for s in recorded["steps"]) > 0
    assert injected["requests"] == sum(1 for line in cassette.read_text().splitlines()[1:])

    def comparable(results: dict) -> dict:
        data = strip_volatile(results)
        data["run"].pop("pipeline_hash", None)  # MOCK_URL differs: the resolved pipeline differs
        return data

    assert comparable(replayed) == comparable(recorded)

    # Redacted fields never reach the file, and replay matched without them.
    text = cassette.read_text()
    assert "user-0001" not in text and '"user_id"' not in text and '"user":' not in text
    for header in ("authorization", "x-api-key", "Bearer"):
        assert header not in text


def test_replay_miss_and_recorded_order(tmp_path):
    pipeline = {
        "name": "rr",
        "endpoints": {"llm": {"type": "openai", "base_url": "${MOCK_URL}/v1", "model": "m"}},
        "steps": [
            {
                "id": "s",
                "endpoint": "llm",
                "prompt": "{{ vars.q }}\nREPLY: ok",
                "checks": [{"type": "equals", "value": "ok"}],
            }
        ],
    }
    rows = [{"id": f"c{i}", "vars": {"q": f"q{i}"}} for i in range(4)]
    path = write_pipeline(tmp_path / "p", pipeline, rows)
    cassette = tmp_path / "c.jsonl"
    with run_in_thread(FaultConfig(status_rates={429: 0.5}, retry_after=0, seed=1)) as server:
        recorded = run(path, tmp_path / "rec", record=str(cassette), environ={"MOCK_URL": server.base_url})
    assert step(recorded, "s")["throttled"] > 0  # identical requests resent, served in recorded order
    rows[2]["vars"]["q"] = "changed"
    path = write_pipeline(tmp_path / "p2", pipeline, rows)
    replayed = run(path, tmp_path / "rep", replay=str(cassette), environ={"MOCK_URL": "http://127.0.0.1:9"})
    s = step(replayed, "s")
    assert s["error_kinds"] == {"replay_miss": 1} and s["passed"] == 3
    assert s["throttled"] == step(recorded, "s")["throttled"] - sum(
        1 for line in cassette.read_text().splitlines()[1:] if '"case":"c2"' in line and '"status":429' in line
    )


async def echo_headers(reader, writer):
    """A badly behaved service: it echoes every request header back in its body."""
    while True:
        try:
            _, headers, _ = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(http_response(200, {"headers": headers, "note": "echo"}))
        await writer.drain()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)  # then close without answering: a protocol error


def test_api_key_appears_in_no_file_and_no_output(tmp_path):
    key = "sk-test-" + secrets.token_hex(12)
    with (
        run_in_thread(FaultConfig(status_rates={500: 0.1, 401: 0.05}, drop_rate=0.05, seed=4)) as server,
        raw_server(echo_headers) as echo_url,
        raw_server(hang_up) as broken_url,
    ):
        pipeline = {
            "name": "secrets",
            "endpoints": {
                "llm": {
                    "type": "openai",
                    "base_url": f"{server.base_url}/v1",
                    "model": "m",
                    "api_key_env": "OPENAI_API_KEY",
                },
                "echo": {
                    "type": "http",
                    "url": echo_url,
                    "json": {"q": "{{ vars.q }}"},
                    "api_key_env": "OPENAI_API_KEY",
                },
                "bad": {
                    "type": "openai",
                    "base_url": f"{broken_url}/v1?key=x",
                    "model": "m",
                    "api_key_env": "OPENAI_API_KEY",
                    "headers": {"api-key": "{{ vars.q }}"},
                },
            },
            "defaults": {"retry": {"max_attempts": 2, "backoff": {"initial_s": 0, "max_s": 0}}},
            "steps": [
                {"id": "ask", "endpoint": "llm", "prompt": "{{ vars.q }}"},
                {"id": "tool", "endpoint": "echo"},
                {"id": "broken", "endpoint": "bad", "prompt": "x"},
            ],
            "gates": {"max_error_rate": 1.0},
        }
        rows = [{"id": f"c{i}", "vars": {"q": f"q{i}"}} for i in range(25)]
        path = write_pipeline(tmp_path / "p", pipeline, rows)
        out = tmp_path / "written"
        out.mkdir()
        proc = run_relcheck(
            "eval",
            path,
            "--out",
            out / "run",
            "--record",
            out / "cassette.jsonl",
            "--json",
            out / "r.json",
            "--junit",
            out / "j.xml",
            "--markdown",
            out / "m.md",
            "--html",
            out / "r.html",
            "--no-progress",
            "--show-failures",
            "100",
            "--debug",
            env={"OPENAI_API_KEY": key},
        )
    assert proc.returncode == 0, proc.stderr  # max_error_rate 1.0 and no gate: every error is data
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "attempts.jsonl",
        "results.json",
        "manifest.json",
        "cassette.jsonl",
        "r.json",
        "j.xml",
        "m.md",
        "r.html",
    }
    for file in files:
        assert key not in file.read_text(errors="replace"), file
    assert key not in proc.stdout and key not in proc.stderr
    # The echoed key was scrubbed from the output, and the line holding it was refused.
    journal = journal_text(out / "run" / "attempts.jsonl")
    assert "Bearer ***" in journal
    assert "not recorded" in proc.stderr and "OPENAI_API_KEY" in proc.stderr
    assert '"refused"' in (out / "cassette.jsonl").read_text()


def test_recorder_allow_list_redaction_and_refusal(tmp_path):
    cassette = tmp_path / "c.jsonl"
    recorder = Recorder(str(cassette), {"K": "sk-secret-value"})
    request = Request(AttemptKey("c1", 1, "s", 1), [], {}, {}, 1.0)
    headers = {
        "Authorization": "Bearer sk-secret-value",
        "x-api-key": "a",
        "api-key": "b",
        "Cookie": "c",
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
    }
    body = {"model": "m", "meta": {"user_id": "u1", "keep": 1}, "list": [{"user_id": "u2"}]}
    ok = Exchange(
        200,
        {"set-cookie": "s", "content-type": "application/json", "retry-after": "1"},
        b'{"user_id": "u3", "text": "hi"}',
        5.0,
    )
    recorder.record(
        "llm", request, "POST", "http://h:1/v1/x?api_key=zzz&v=1", headers, body, exchange=ok, redact_fields=["user_id"]
    )
    recorder.record("llm", request, "POST", "http://h:1/v1/x", headers, {"q": "sk-secret-value"}, exchange=ok)
    recorder.record(
        "llm",
        request,
        "POST",
        "http://h:1/v1/x",
        headers,
        body,
        error=AttemptError("timeout", "no reply", latency_ms=1000.0),
        redact_fields=["user_id"],
    )
    recorder.close()
    lines = [json.loads(x) for x in cassette.read_text().splitlines()]
    assert lines[0]["relcheck_cassette"] == 1
    first = lines[1]
    assert first["request_headers"] == {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    assert first["response_headers"] == {"content-type": "application/json", "retry-after": "1"}
    assert first["body"] == {"list": [{}], "meta": {"keep": 1}, "model": "m"}
    assert "u3" not in first["response"] and first["url"] == "http://h:1/v1/x?api_key=REDACTED&v=1"
    assert "sk-secret-value" not in cassette.read_text() and "refused" in lines[2]
    assert lines[3]["error"] == "timeout" and lines[3]["status"] is None

    replayer = Replayer(str(cassette))
    reordered = {"list": [{"user_id": "other"}], "model": "m", "meta": {"keep": 1, "user_id": "zz"}}
    got = replayer.answer("llm", request, "https://elsewhere/v1/x", reordered, ["user_id"])
    assert got.status == 200 and got.latency_ms == 5.0  # host and redacted values do not matter
    with pytest.raises(AttemptError) as info:
        replayer.answer("llm", request, "http://h:1/v1/x", body, ["user_id"])
    assert info.value.kind == "timeout" and info.value.latency_ms == 1000.0
    with pytest.raises(AttemptError) as info:
        replayer.answer("llm", request, "http://h:1/v1/x", {"q": "sk-secret-value"}, [])
    assert info.value.kind == "replay_miss"


def test_helpers():
    assert canonical({"b": 1, "a": [2, {"d": 1, "c": 0}]}) == '{"a":[2,{"c":0,"d":1}],"b":1}'
    assert redact({"a": {"x": 1, "y": [{"x": 2}]}}, ["x"]) == {"a": {"y": [{}]}}
    assert safe_url("https://u:p@h/p?token=1&api-version=2") == "https://h/p?token=REDACTED&api-version=2"


def test_replay_sends_nothing_and_needs_no_key(tmp_path):
    cassette = tmp_path / "c.jsonl"
    request = Request(AttemptKey("c1", 1, "s", 1), [{"role": "user", "content": "hi"}], {}, {}, 1.0)
    recorder = Recorder(str(cassette), {})
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    reply = b'{"choices": [{"message": {"content": "from tape"}}], "usage": {"prompt_tokens": 1}}'
    recorder.record(
        "llm", request, "POST", "http://x/v1/chat/completions", {}, body, exchange=Exchange(200, {}, reply, 123.0)
    )
    recorder.close()
    config = OpenAIEndpoint(
        type="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key_env="NOT_SET_ANYWHERE"
    )

    async def go():
        endpoint = build("llm", config, {"replay": str(cassette), "environ": {}})
        try:
            return await endpoint.call(request)
        finally:
            await endpoint.aclose()

    response = asyncio.run(go())
    assert response.text == "from tape" and response.latency_ms == 123.0 and response.tokens_in == 1


def test_missing_cassette_and_recording_over_the_replayed_one_are_refused_before_running(tmp_path, cli):
    pipeline = {
        "name": "rr",
        "endpoints": {"llm": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
        "steps": [{"id": "s", "endpoint": "llm", "prompt": "hi"}],
    }
    path = write_pipeline(tmp_path / "p", pipeline, [{"id": "c1"}])
    code, _, err = cli("eval", path, "--replay", tmp_path / "missing.jsonl", "--out", tmp_path / "run")
    assert code == 2 and "no such cassette" in err and not (tmp_path / "run").exists()
    (tmp_path / "c.jsonl").write_text('{"relcheck_cassette": 1}\n')
    code, _, err = cli(
        "eval", path, "--replay", tmp_path / "c.jsonl", "--record", tmp_path / "c.jsonl", "--out", tmp_path / "run"
    )
    assert code == 2 and "it is the cassette --replay reads" in err and not (tmp_path / "run").exists()


def test_validate_with_replay_needs_no_key(cli, monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "evalsets" / "support-agent"
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = cli("validate", root / "pipeline.yaml")
    assert code == 2 and "is not set" in err
    cassette = next(root.glob("*.jsonl"), None)
    cassettes = [p for p in root.glob("*.jsonl") if p.name != "cases.jsonl"]
    assert cassettes, cassette
    code, out, err = cli("validate", root / "pipeline.yaml", "--replay", cassettes[0])
    assert code == 0, err


def test_record_never_overwrites_a_cassette(cli, tmp_path):
    from pathlib import Path

    six = Path(__file__).resolve().parent.parent / "evalsets" / "six-step-agent" / "pipeline.yaml"
    cassette = tmp_path / "mine.jsonl"
    cassette.write_text("precious\n")
    code, _, err = cli("eval", six, "--record", cassette, "--out", tmp_path / "r", "--limit", "3")
    assert code == 2 and "never overwrites" in err
    assert cassette.read_text() == "precious\n"
