"""Lone surrogates in case ids, vars and replies never crash a writer (issue 10, item 10).

Policy (reliability_cli/safetext.py): JSON files keep each lone surrogate as its JSON escape
(``\\ud800``: valid UTF-8 on disk, the same string when read back); text outputs (Markdown,
HTML, JUnit, terminal) show U+FFFD.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..endpoints.helpers import always, raw_server

LONE = "\ud800"


def _write(tmp_path: Path, endpoint: str) -> Path:
    cases = [
        {"id": f"c{LONE}0", "vars": {"q": f"x{LONE}y"}, "expect": {"a": "never"}},
        {"id": "plain", "vars": {"q": "fine"}, "expect": {"a": "never"}},
    ]
    # json.dumps escapes the surrogate: a valid UTF-8 JSONL file holding a lone surrogate
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"""version: 1
name: surrogates
evalset: cases.jsonl
endpoints:
  llm: {endpoint}
steps:
  - id: a
    endpoint: llm
    prompt: "{{{{ vars.q }}}}"
    checks:
      - {{type: equals, value: "{{{{ expect.a }}}}"}}
""")
    return path


def _check_outputs(cli, tmp_path: Path, run: Path) -> None:
    for name in ("results.json", "attempts.jsonl", "out.json"):
        raw = (run / name if name != "out.json" else tmp_path / name).read_bytes()
        raw.decode("utf-8")  # strict: valid UTF-8
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    assert results["units"][0]["case"] == f"c{LONE}0"  # round-trips exactly
    assert json.loads((tmp_path / "out.json").read_text())["units"][0]["case"] == f"c{LONE}0"
    lines = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    assert any(x.get("case") == f"c{LONE}0" for x in lines)
    for name in ("report.md", "report.html", "junit.xml"):
        text = (tmp_path / name).read_bytes().decode("utf-8")
        assert "\ufffd" in text and LONE not in text
    for fmt in ("terminal", "markdown", "json", "junit", "html"):
        code, out, err = cli("report", run, "--format", fmt, "-o", tmp_path / f"again.{fmt}")
        assert code == 0, err
        (tmp_path / f"again.{fmt}").read_bytes().decode("utf-8")
    code, out, err = cli("report", run)  # the terminal report on stdout
    assert code == 0 and "internal error" not in err


def test_mock_run_with_surrogates_writes_every_output(cli, tmp_path):
    path = _write(tmp_path, "{type: mock, reply: '{{ vars.q }}'}")
    run = tmp_path / "run"
    code, out, err = cli(
        "eval",
        path,
        "--out",
        run,
        "--json",
        tmp_path / "out.json",
        "--markdown",
        tmp_path / "report.md",
        "--html",
        tmp_path / "report.html",
        "--junit",
        tmp_path / "junit.xml",
    )
    assert code == 0, err  # a judged run (no gate), not an internal error
    _check_outputs(cli, tmp_path, run)
    # resume (compacts and rewrites the journal) keeps working
    (run / "results.json").unlink()
    code, out, err = cli("eval", path, "--resume", run, "--json", tmp_path / "out.json")
    assert code == 0, err
    assert json.loads((run / "results.json").read_text())["units"][0]["case"] == f"c{LONE}0"


def test_seeded_draws_and_shards_take_surrogate_ids(cli, tmp_path):
    """The mock's seeded draw and ``--shard`` hash the case id: a lone surrogate hashes too
    (its UTF-8-style bytes, ``surrogatepass``), the same in every process."""
    path = _write(tmp_path, "{type: mock, fail_rate: 0.5, failure: error, reply: ok}")
    code, out, err = cli("eval", path, "--out", tmp_path / "run", "--shard", "1/1")
    assert code in (0, 1, 3), err
    assert "internal error" not in err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {u["case"] for u in results["units"]} == {f"c{LONE}0", "plain"}


def test_http_run_with_surrogates_in_request_and_reply(cli, tmp_path):
    body = json.dumps({"choices": [{"message": {"content": f"reply {LONE}"}}]}).encode()  # escaped
    seen: list = []
    with raw_server(always(200, body, seen=seen)) as url:
        path = _write(tmp_path, f"{{type: openai, base_url: '{url}', model: m, timeout_s: 10}}")
        run = tmp_path / "run"
        code, out, err = cli(
            "eval",
            path,
            "--out",
            run,
            "--json",
            tmp_path / "out.json",
            "--markdown",
            tmp_path / "report.md",
            "--html",
            tmp_path / "report.html",
            "--junit",
            tmp_path / "junit.xml",
        )
    assert code == 0, err
    sent = [json.loads(b) for _, _, b in seen]
    assert f"x{LONE}y" in [m["content"] for s in sent for m in s["messages"]]  # sent as its JSON escape
    _check_outputs(cli, tmp_path, run)
    lines = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    assert any(x.get("output") == f"reply {LONE}" for x in lines)
