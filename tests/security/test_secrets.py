"""Every value that came from an environment variable into a request is a secret (issue 10,
items 1-5): a hostile server on 127.0.0.1 echoes everything it was sent back in content,
tool-call arguments, a non-JSON 2xx body and error bodies; no secret may reach any file of
the run directory, the cassette, any report, or stdout/stderr."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from tests.endpoints.helpers import http_response, raw_server, read_request, write_pipeline
from tests.helpers import journal_text, run_relcheck

SECRETS = {
    "OPENAI_API_KEY": "sk-APIKEY-1111aaaa",  # api_key_env
    "AZ_KEY": "az-HEADER-2222bbbb",  # headers: {api-key: ${AZ_KEY}}
    "BASE_TOKEN": "bt-BASEURL-3333cccc",  # base_url path
    "QKEY": "qk-QUERY-4444dddd",  # query parameter
    "JSON_TOKEN": "jt-JSONBODY-5555eeee",  # http endpoint json body
    "URL_TOKEN": "ut-HTTPURL-6666ffff",  # http endpoint url
}


def _echo(request_line: str, headers: dict[str, str], body: bytes) -> str:
    """Everything the server was sent, as one string (the secrets in the clear)."""
    return " | ".join([unquote(request_line), *headers.values(), body.decode()])


async def hostile(reader, writer) -> None:
    """Echoes what it was sent, in the way the request's text asks for."""
    while True:
        try:
            line, headers, body = await read_request(reader)
        except Exception:
            return
        echo = _echo(line, headers, body)
        mode = next(
            (
                m
                for m in ("content", "tool", "html", "unauthorized", "servererror", "pass")
                if f"MODE={m}" in body.decode()
            ),
            "content",
        )
        if "/tool/" in line:  # the http endpoint: a JSON reply whose text is checked
            reply = http_response(200, {"data": {"text": echo}})
        elif mode == "content":
            reply = http_response(200, {"choices": [{"message": {"content": echo}}]})
        elif mode == "tool":
            call = {"type": "function", "function": {"name": "lookup", "arguments": json.dumps({"q": echo})}}
            reply = http_response(200, {"choices": [{"message": {"content": None, "tool_calls": [call]}}]})
        elif mode == "html":
            reply = http_response(200, f"<html>bad key {echo}</html>".encode())
        elif mode == "unauthorized":
            reply = http_response(401, {"error": {"message": f"invalid key {echo}"}})
        elif mode == "servererror":
            reply = http_response(500, f"upstream said {echo}".encode())
        else:
            reply = http_response(200, {"choices": [{"message": {"content": "ok"}}]})
        writer.write(reply)
        await writer.drain()


def _write(tmp_path: Path, url: str, api_key: bool = True) -> Path:
    pipeline = {
        "name": "hostile",
        "endpoints": {
            "llm": {
                "type": "openai",
                "base_url": url + "/${BASE_TOKEN}/v1",
                "model": "m",
                "api_key_env": "OPENAI_API_KEY",
                "headers": {"api-key": "${AZ_KEY}"},
                "query": {"api-version": "${QKEY}"},
            },
            "tool": {
                "type": "http",
                "url": url + "/tool/${URL_TOKEN}",
                "output_path": "data.text",
                "json": {"token": "${JSON_TOKEN}", "q": "{{ vars.mode }}"},
            },
        },
        "steps": [
            {
                "id": "ask",
                "endpoint": "llm",
                "prompt": "MODE={{ vars.mode }}",
                "checks": [{"type": "not-contains", "value": "MODE"}],
            },
            {"id": "fetch", "endpoint": "tool", "checks": [{"type": "not-contains", "value": "never-there"}]},
            {
                "id": "lookup",
                "endpoint": "llm",
                "prompt": "MODE=tool",
                "checks": [{"type": "tool-call", "name": "lookup", "arguments": {"q": "something else"}}],
            },
        ],
        "gates": {"max_error_rate": 1.0, "end_to_end": {"min": 0.5}},
    }
    if not api_key:
        del pipeline["endpoints"]["llm"]["api_key_env"]
    modes = ["content", "html", "unauthorized", "servererror", "pass", "pass", "pass"]
    rows = [{"id": f"c{i}-{m}", "vars": {"mode": m}} for i, m in enumerate(modes)]
    return write_pipeline(tmp_path / "p", pipeline, rows)


def _assert_clean(texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for name, value in SECRETS.items():
            assert value not in text, f"{name}'s value leaked into {where}"
            assert value[3:] not in text, f"part of {name}'s value leaked into {where}"


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    env = dict(SECRETS)
    with raw_server(hostile) as url:
        path = _write(tmp_path, url)
        out = tmp_path / "out"
        out.mkdir()
        runs = [
            run_relcheck(
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
                env=env,
            )
        ]
        for fmt in ("terminal", "json", "junit", "markdown", "html"):
            runs.append(run_relcheck("report", out / "run", "--format", fmt, "-o", out / f"report.{fmt}"))
            runs.append(run_relcheck("report", out / "run", "--format", fmt))
        runs.append(
            run_relcheck(
                "compare", out / "run", out / "r.json", "--markdown", out / "compare.md", "--json", out / "compare.json"
            )
        )
        # Replaying the cassette (keys needed to build the same requests: scrubbed the same way).
        runs.append(
            run_relcheck(
                "eval",
                path,
                "--out",
                out / "replayed",
                "--replay",
                out / "cassette.jsonl",
                "--json",
                out / "replayed.json",
                "--no-progress",
                env=env,
            )
        )
    first = runs[0]
    assert first.returncode == 1, first.stderr
    results = json.loads((out / "r.json").read_text())
    # The hostile replies really reached the outputs (so the test could fail): each failure path ran.
    journal = journal_text(out / "run" / "attempts.jsonl")
    assert "not valid JSON" in journal and "HTTP 401" in journal and "http_500" in journal
    assert "tool-call" in journal and "***" in journal
    kinds = {u["case"].split("-")[1]: u for u in results["units"]}
    assert kinds["content"]["outcome"] == "fail" and kinds["html"]["error_kind"] == "parse"
    assert kinds["unauthorized"]["error_kind"] == "http_401" and kinds["servererror"]["error_kind"] == "http_500"
    assert kinds["pass"]["failed_step"] == "lookup"  # after fetch passed with the echoed secrets
    cassette = (out / "cassette.jsonl").read_text()
    assert cassette.count("\n") > 8
    texts = {str(p.relative_to(out)): p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()}
    assert {
        "run/attempts.jsonl",
        "run/results.json",
        "run/manifest.json",
        "cassette.jsonl",
        "r.json",
        "j.xml",
        "m.md",
        "r.html",
        "report.html",
        "compare.md",
        "replayed/results.json",
    } <= set(texts)
    for i, proc in enumerate(runs):
        texts[f"stdout of command {i}"] = proc.stdout
        texts[f"stderr of command {i}"] = proc.stderr
    _assert_clean(texts)
    # The llm exchanges echoed the API key (its Authorization header): refused, as SPEC §9 says;
    # the tool endpoint's (no API key) were recorded with the other secrets masked.
    assert "not recorded" in first.stderr and '"refused"' in cassette
    assert '"endpoint":"tool"' in cassette and "/tool/***" in cassette


def test_a_scrubbed_cassette_replays_the_run(tmp_path: Path) -> None:
    """Without an API key in the exchanges, lines are masked rather than refused, and the
    request keys are masked the same way at replay: the run replays unit for unit."""
    env = {k: v for k, v in SECRETS.items() if k != "OPENAI_API_KEY"}
    with raw_server(hostile) as url:
        path = _write(tmp_path, url, api_key=False)
        recorded = run_relcheck(
            "eval", path, "--out", tmp_path / "run", "--record", tmp_path / "c.jsonl", "--no-progress", env=env
        )
    replayed = run_relcheck(
        "eval", path, "--out", tmp_path / "replayed", "--replay", tmp_path / "c.jsonl", "--no-progress", env=env
    )
    assert recorded.returncode == 1 and replayed.returncode == 1, recorded.stderr + replayed.stderr
    cassette = (tmp_path / "c.jsonl").read_text()
    assert '"refused"' not in cassette and "***" in cassette
    _assert_clean(
        {
            "cassette": cassette,
            "recorded": recorded.stdout + recorded.stderr,
            "replayed": replayed.stdout + replayed.stderr,
        }
    )

    def units(run: str) -> list[tuple]:
        doc = json.loads((tmp_path / run / "results.json").read_text())
        return [(u["case"], u["outcome"], u["failed_step"], u["error_kind"]) for u in doc["units"]]

    assert units("replayed") == units("run")
    assert any(u[2] == "lookup" for u in units("run"))  # the unit that got past the first two steps


def test_validation_errors_quote_the_unresolved_text(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: v\nendpoints:\n  llm:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n"
        '    model: m\n    headers: "Authorization: Bearer ${OPENAI_API_KEY}"\n'
        "steps:\n  - {id: s, endpoint: llm, prompt: hi}\n"
    )
    proc = run_relcheck("validate", path, env={"OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"]})
    assert proc.returncode == 2, proc.stderr
    assert "${OPENAI_API_KEY}" in proc.stderr and "headers" in proc.stderr
    _assert_clean({"stdout": proc.stdout, "stderr": proc.stderr})


def test_the_refused_line_does_not_hold_the_key(tmp_path: Path) -> None:
    """A key in the base_url path makes the recorder refuse the exchange; the refusal itself
    must not quote the path that holds the key."""
    with raw_server(hostile) as url:
        pipeline = {
            "name": "r",
            "endpoints": {
                "llm": {
                    "type": "openai",
                    "base_url": url + "/${OPENAI_API_KEY}/v1",
                    "model": "m",
                    "api_key_env": "OPENAI_API_KEY",
                }
            },
            "steps": [{"id": "s", "endpoint": "llm", "prompt": "MODE=pass"}],
        }
        path = write_pipeline(tmp_path / "p", pipeline, [{"id": "a", "vars": {}}])
        proc = run_relcheck(
            "eval",
            path,
            "--out",
            tmp_path / "run",
            "--record",
            tmp_path / "c.jsonl",
            "--no-progress",
            env={"OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"]},
        )
    assert proc.returncode == 0, proc.stderr
    cassette = (tmp_path / "c.jsonl").read_text()
    assert '"refused"' in cassette and "OPENAI_API_KEY" in proc.stderr
    _assert_clean({"cassette": cassette, "stderr": proc.stderr, "stdout": proc.stdout})


def test_scrub_masks_every_spelling() -> None:
    from reliability_cli import scrub

    scrub.register(['sk-a/b c"d', None, "abc"])  # "abc": too short to be a credential
    assert scrub.scrub('x sk-a/b c"d y') == "x *** y"
    assert scrub.scrub(json.dumps({"k": 'sk-a/b c"d'})) == '{"k": "***"}'
    assert scrub.scrub("?q=sk-a%2Fb%20c%22d&r=sk-a%2Fb+c%22d") == "?q=***&r=***"
    assert scrub.scrub("abc") == "abc"
    assert scrub.scrub_value({'sk-a/b c"d': ['sk-a/b c"d', 1]}) == {"***": ["***", 1]}
