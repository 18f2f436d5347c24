"""Graph pipelines with bad input: exit 2, one clear message naming file, line and key."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from .helpers import COUNTING, project

GRAPH = (
    COUNTING
    + """
class S(TypedDict, total=False):
    x: int

def classify(s, config):
    return {"x": 1}

def write_reply(s, config):
    return {"x": 2}

def build():
    g = StateGraph(S)
    g.add_node("classify", classify); g.add_node("write_reply", write_reply)
    g.add_edge(START, "classify"); g.add_edge("classify", "write_reply"); g.add_edge("write_reply", END)
    return g
"""
)

PIPELINE = """\
version: 1
name: bad
evalset: cases.jsonl
graph:
  type: langgraph
  target: {target}
steps:
  - id: classify
    checks: [{{type: contains, value: "x"}}]
  - id: draft
    node: {node}
    output: "{output}"
"""

CASES = [{"id": "c0", "vars": {"t": "a"}, "expect": {}}]


def _write(
    tmp_path: Path,
    module: str,
    target: str | None = None,
    node: str = "write_reply",
    output: str = "{{ update.x }}",
    source: str = GRAPH,
) -> Path:
    return project(
        tmp_path,
        source,
        PIPELINE.format(target=target or f"{module}:build", node=node, output=output),
        CASES,
        name=module,
    )


def test_a_missing_node_is_exit_2_with_did_you_mean(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, "g_bad_node", node="write_replies")
    code, out, err = cli("validate", path)
    assert code == 2
    assert f"{path}:11:11 at steps[1].node: the graph has no node 'write_replies'" in err
    assert "did you mean 'write_reply'?" in err and "Traceback" not in err
    code, _, err = cli("eval", path, "--out", tmp_path / "run")
    assert code == 2 and "write_replies" in err and not (tmp_path / "run").exists()


def test_validate_accepts_a_good_graph(tmp_path: Path, cli) -> None:
    code, out, err = cli("validate", _write(tmp_path, "g_bad_ok"))
    assert code == 0, err
    assert "3 steps" not in out and "2 steps" in out


def test_a_target_that_does_not_import_names_its_file_and_line(tmp_path: Path, cli) -> None:
    broken = GRAPH.replace("def write_reply(s, config):", "undefined_name + 1\n\ndef write_reply(s, config):")
    path = _write(tmp_path, "g_bad_import", source=broken)
    line = broken.splitlines().index("undefined_name + 1") + 1
    code, _, err = cli("validate", path)
    assert code == 2
    assert f"{tmp_path / 'g_bad_import.py'}:{line}: graph target 'g_bad_import:build' does not import" in err
    assert "NameError" in err and f"graph.target is at {path}:6" in err

    syntax = GRAPH.replace("def classify(s, config):", "def classify(s, config)")
    path = _write(tmp_path / "s", "g_bad_syntax", source=syntax)
    line = syntax.splitlines().index("def classify(s, config)") + 1
    code, _, err = cli("validate", path)
    assert code == 2 and f"g_bad_syntax.py:{line}" in err and "SyntaxError" in err


def test_a_missing_module_or_attribute_points_at_graph_target(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, "g_bad_attr", target="g_bad_attr:buidl")
    code, _, err = cli("validate", path)
    assert code == 2 and f"{path}:6:11 at graph.target" in err and "did you mean 'build'?" in err
    path = _write(tmp_path / "m", "g_bad_mod", target="no_such_module_here:build")
    code, _, err = cli("validate", path)
    assert code == 2 and "no module named 'no_such_module_here'" in err


def test_templates_name_only_vars_expect_update_state(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, "g_bad_tpl", output="{{ steps.classify.output }}")
    code, _, err = cli("validate", path)
    assert code == 2 and "at steps[1].output: template names 'steps'" in err
    assert "available: expect, state, update, vars" in err


def test_pipeline_step_keys_are_refused_in_a_graph(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, "g_bad_keys")
    path.write_text(path.read_text().replace("    node: write_reply\n", "    node: write_reply\n    endpoint: llm\n"))
    code, _, err = cli("validate", path)
    assert code == 2 and "'endpoint' is a key of pipeline steps" in err


def test_graph_keys_are_refused_without_a_graph(tmp_path: Path, cli) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "version: 1\nname: x\nendpoints: {m: {type: mock}}\n"
        "steps:\n  - {id: a, endpoint: m, node: a}\nfinal: {checks: []}\n"
    )
    code, _, err = cli("validate", path)
    assert code == 2 and "'node' is a key of graph steps" in err and "'final' checks the final state" in err


def test_missing_langgraph_is_exit_2_with_the_install_command(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "g_bad_nolg")
    real_import = builtins.__import__

    def no_langgraph(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name.split(".")[0] == "langgraph":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_langgraph)
    code, _, err = cli("validate", path)
    assert code == 2, err
    assert "needs the langgraph package" in err and "pip install 'relcheck[langgraph]'" in err
