"""The bundled ``evalsets/mcp-agent``: validate and run it offline; its per-step rates must
fall inside their Wilson intervals around the seeded rates, and no server process may outlive
the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from statsmodels.stats.proportion import proportion_confint

from ..helpers import ROOT, run_relcheck
from .helpers import alive

EVALSET = ROOT / "evalsets" / "mcp-agent"
PLAN_FAIL, TOOL_ERROR = 0.05, 0.10  # pipeline.yaml: planner fail_rate, TOOLS_ERROR_RATE


def _servers_of(folder: Path) -> list[int]:
    """Live processes running ``tools_server.py`` in ``folder`` (relcheck starts it there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == str(folder) and any(part.endswith(b"tools_server.py") for part in cmdline) and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def _wilson(passed: int, n: int) -> tuple[float, float]:
    low, high = proportion_confint(passed, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def test_mcp_agent_runs_offline_at_its_seeded_rates(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "mcp-agent"
    shutil.copytree(EVALSET, folder)
    pipeline = folder / "pipeline.yaml"
    probe = subprocess.Popen([sys.executable, "tools_server.py"], cwd=folder, stdin=subprocess.PIPE)
    try:  # the matcher below sees a server started the way relcheck starts it
        deadline = time.monotonic() + 30
        while probe.pid not in _servers_of(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.pid in _servers_of(folder)
    finally:
        probe.kill()
        probe.wait(timeout=30)
        assert probe.stdin is not None
        probe.stdin.close()
    checked = run_relcheck("validate", pipeline)
    assert checked.returncode == 0, checked.stderr
    proc = run_relcheck(
        "eval",
        pipeline,
        "--out",
        tmp_path / "run",
        "--no-progress",
        "--markdown",
        tmp_path / "r.md",
        cwd=tmp_path,
        env={"NO_PROXY": "*"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    steps = {s["id"]: s for s in results["steps"]}
    expected = {"plan": 1 - PLAN_FAIL, "act": 1 - TOOL_ERROR**2, "refund": 1 - TOOL_ERROR}
    for step_id, rate in expected.items():
        row = steps[step_id]
        low, high = _wilson(row["passed"], row["reached"])
        assert (round(low, 9), round(high, 9)) == (round(row["ci"]["low"], 9), round(row["ci"]["high"], 9))
        assert low <= rate <= high, (step_id, row["passed"], row["reached"], rate)
    act = steps["act"]
    first_low, first_high = _wilson(round(act["first_try_rate"] * act["reached"]), act["reached"])
    assert first_low <= 1 - TOOL_ERROR <= first_high
    # the tool's own failures are the step's: counted by kind, never as infrastructure errors
    assert set(act["error_kinds"]) == set(steps["refund"]["error_kinds"]) == {"tool_error"}
    assert act["error_kinds"]["tool_error"] == act["attempt_outcomes"]["error"] > 0
    assert act["retry_recovered"] > 0
    assert results["end_to_end"]["infra_errors"] == 0
    e2e = results["end_to_end"]
    low, high = _wilson(e2e["passed"], e2e["total"])
    assert low <= expected["plan"] * expected["act"] * expected["refund"] <= high
    assert (tmp_path / "run" / "mcp-tools.log").exists()
    assert _servers_of(folder) == []
