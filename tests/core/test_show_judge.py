"""``relcheck show`` displays the ``llm-rubric`` judge's call with the attempt it judged: the
request as rendered and sent (secrets masked, no header), and the judge's reply (#14)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from reliability_cli.show import Selection, load_units, render
from tests.endpoints.helpers import (
    Handler,
    Request,
    answering,
    completion,
    http_response,
    raw_server,
    run,
    write_pipeline,
)
from tests.helpers import journal_text

KEY = "sk-judge-key-0123456789"
TOKEN = "rubric-token-24680"


def _handler(seen: list[dict[str, Any]]) -> Handler:
    def answer(request: Request) -> bytes:
        _, headers, raw = request
        body = json.loads(raw)
        seen.append({"headers": headers, "body": body})
        if body["messages"][0]["content"].startswith("You are grading") and "REPLY-boom" in str(body):
            return http_response(400, {"error": {"message": "judge says no"}})
        if body["messages"][0]["content"].startswith("You are grading"):
            verdict = "REPLY-b" not in body["messages"][-1]["content"]
            reply = json.dumps({"reason": f"graded {'well' if verdict else 'badly'}", "pass": verdict})
        else:
            reply = "REPLY-" + body["messages"][-1]["content"]
        return http_response(200, completion(reply, (11, 6)))

    return answering(answer)


@pytest.fixture
def judged_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[dict[str, Any]]]:
    monkeypatch.setenv("JUDGE_TEST_KEY", KEY)
    monkeypatch.setenv("JUDGE_RUBRIC_TOKEN", TOKEN)
    seen: list[dict[str, Any]] = []
    with raw_server(_handler(seen)) as url:
        endpoint = {"type": "openai", "base_url": url, "model": "m", "api_key_env": "JUDGE_TEST_KEY", "timeout_s": 5}
        pipeline = {
            "name": "judged",
            "endpoints": {"llm": endpoint, "grader": {**endpoint, "model": "judge-model"}},
            "steps": [
                {
                    "id": "answer",
                    "endpoint": "llm",
                    "prompt": "{{ vars.q }}",
                    "checks": [
                        {
                            "type": "llm-rubric",
                            "endpoint": "grader",
                            "rubric": "Polite, and never says ${JUDGE_RUBRIC_TOKEN}",
                        }
                    ],
                }
            ],
        }
        cases = [{"id": c, "vars": {"q": c}} for c in ("a", "b", "boom")]
        path = write_pipeline(tmp_path, pipeline, cases)
        run(path, tmp_path / "run", concurrency=1)
    return tmp_path / "run", seen


def test_show_displays_the_judge_request_and_reply(judged_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, seen = judged_run
    judge_sent = [r for r in seen if r["body"]["model"] == "judge-model"]
    assert len(judge_sent) == 3 and all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in judge_sent)
    assert TOKEN in judge_sent[0]["body"]["messages"][1]["content"]  # the judge was sent the real value

    (unit,) = load_units(run_dir, Selection(case="b")).units
    assert unit["outcome"] == "fail"
    (att,) = unit["steps"][0]["attempts"]
    (call,) = att["judge"]
    assert call["endpoint"] == "grader" and call["outcome"] == "pass"
    system, user = call["request"]["messages"]
    assert system["content"].startswith("You are grading")
    assert "<Output>\nREPLY-b\n</Output>" in user["content"]
    assert "never says ***" in user["content"] and TOKEN not in user["content"]
    assert call["sent"]["body"]["model"] == "judge-model" and "headers" not in call["sent"]
    assert json.loads(call["output"]) == {"reason": "graded badly", "pass": False}
    assert (call["tokens_in"], call["tokens_out"]) == (11, 6)

    buf = StringIO()
    from rich.console import Console

    render(load_units(run_dir, Selection(case="b")), Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    assert "judge call (endpoint grader) · pass" in text
    assert "You are grading output" in text and "REPLY-b" in text and "graded badly" in text

    sidecar = journal_text(run_dir / "requests.jsonl")
    assert KEY not in sidecar and TOKEN not in sidecar
    assert sidecar.count('"judge":[') == 3  # a passing unit's judge call is kept too


def test_a_failed_judge_call_is_shown_with_its_error(judged_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, _ = judged_run
    (unit,) = load_units(run_dir, Selection(case="boom")).units
    assert unit["outcome"] == "error"
    (call,) = unit["steps"][0]["attempts"][0]["judge"]
    assert call["outcome"] == "error" and call["error_kind"] == "http_400" and call["output"] is None
    assert "judge says no" in call["reason"]
    assert "REPLY-boom" in call["request"]["messages"][1]["content"]


def test_show_json_carries_the_judge_call(judged_run: tuple[Path, list[dict[str, Any]]], cli: Any) -> None:
    run_dir, _ = judged_run
    code, out, err = cli("show", run_dir, "--case", "a", "--json")
    assert code == 0, err
    (unit,) = json.loads(out)["units"]
    (call,) = unit["steps"][0]["attempts"][0]["judge"]
    assert call["outcome"] == "pass" and "graded well" in call["output"]


def test_the_html_viewer_shows_the_judge_call_too(judged_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """The HTML report's unit viewer opens to the same detail as ``show``: the judge's
    rendered request and its reply, escaped, and no secret."""
    from reliability_cli.reports import render as render_report
    from reliability_cli.results.schema import load

    run_dir, _ = judged_run
    html = render_report(load(run_dir), "html")
    assert 'class="judge"' in html and "judge call" in html
    assert "You are grading" in html and "graded badly" in html
    assert KEY not in html and TOKEN not in html


def test_an_env_value_in_a_rubric_reaches_no_file(judged_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """The rubric goes to the judge and its reason quotes it: a ``${VAR}`` in it is a secret
    like one in a prompt (the check's reason once carried it into the journal and results)."""
    run_dir, seen = judged_run
    assert any(TOKEN in json.dumps(r["body"]) for r in seen)  # the judge did get it
    for path in run_dir.iterdir():
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip

            data = gzip.decompress(data)
        assert TOKEN.encode() not in data and KEY.encode() not in data, path.name
