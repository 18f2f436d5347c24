"""Untrusted text is shown, never obeyed, where it reaches a terminal, a CI log or a
Markdown report (issue 10, item 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability_cli.safetext import markdown_cell, terminal, workflow_data, workflow_property

ESC_ID = "c\x1b[2J\x1b]0;owned\x07"
CMD_ID = "c1\n::error::injected"
HTML = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_terminal_escapes_controls_and_keeps_text():
    assert terminal("a\x1b[2Jb\x07\x9b") == "a\\x1b[2Jb\\x07\\x9b"
    assert terminal("line\nnext\tx") == "line\nnext\tx"
    assert terminal("line\nnext", newlines=False) == "line\\x0anext"
    assert terminal("ok é ✓") == "ok é ✓"
    assert terminal("rtl\u202eevil") == "rtl\\u202eevil"
    assert terminal("lone \ud800") == "lone \ufffd"


def test_workflow_command_escaping_follows_githubs_rules():
    assert workflow_data("50%\r\n::error::x") == "50%25%0D%0A::error::x"
    assert workflow_property("a:b,c\n") == "a%3Ab%2Cc%0A"


def test_markdown_cell_escapes_html_and_pipes():
    cell = markdown_cell(HTML + " | x")
    assert "<" not in cell and "&lt;script&gt;" in cell and "\\|" in cell


def _pipeline(tmp_path: Path) -> Path:
    cases = [
        {"id": ESC_ID, "vars": {}, "expect": {}},
        {"id": CMD_ID, "vars": {}, "expect": {}},
        {"id": "html`tick", "vars": {}, "expect": {}},
    ]
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    path = tmp_path / "pipeline.yaml"
    reply = json.dumps(HTML + "\n::warning::from the model \x1b[31mred")
    path.write_text(f"""version: 1
name: escaping
evalset: cases.jsonl
endpoints:
  sim: {{type: mock, reply: {reply}}}
steps:
  - id: a
    endpoint: sim
    checks:
      - {{type: equals, value: "nope"}}
gates:
  end_to_end: {{min: 0.9}}
""")
    return path


@pytest.fixture
def ran(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = cli(
        "eval", _pipeline(tmp_path), "--out", tmp_path / "run", "--markdown", tmp_path / "report.md", "--no-progress"
    )
    assert code == 1, err  # the gate fails
    return out, err, tmp_path


def test_terminal_report_shows_escapes_not_controls(ran):
    out, err, _ = ran
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out  # the id is still recognisable


def test_ci_log_has_only_relchecks_own_workflow_commands(ran):
    out, err, _ = ran
    commands = [line for line in (out + err).splitlines() if line.lstrip().startswith("::")]
    assert commands and all(line.startswith("::error title=relcheck gate ") for line in commands), commands
    assert "::error::injected" not in (out + err).replace("\\x0a::error::injected", "")


def test_markdown_report_renders_no_html_from_model_output(ran):
    from markdown_it import MarkdownIt

    _, _, tmp_path = ran
    for name in ("report.md", "summary.md"):
        text = (tmp_path / name).read_text()
        html = MarkdownIt("commonmark").enable("table").render(text)
        assert "<script" not in html and "<img" not in html, name
        assert "&lt;script&gt;" in html
        assert "\x1b" not in text


def test_errors_quote_ids_escaped(cli, tmp_path):
    (tmp_path / "cases.jsonl").write_text(json.dumps({"id": ESC_ID}) + "\n" + json.dumps({"id": ESC_ID}) + "\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "version: 1\nname: e\nevalset: cases.jsonl\nendpoints:\n  sim: {type: mock}\n"
        "steps:\n  - {id: a, endpoint: sim, prompt: hi}\n"
    )
    code, out, err = cli("validate", path)
    assert code == 2 and "duplicate case id" in err
    assert "\x1b" not in err and "\\x1b[2J" in err
