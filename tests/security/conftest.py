from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the six-step example (mock endpoints, offline); returns its pipeline path."""
    target = tmp_path / "proj"
    shutil.copytree(ROOT / "evalsets" / "six-step-agent", target)
    return target / "pipeline.yaml"


@pytest.fixture
def finished_run(project: Path, cli) -> Path:
    """A finished run directory of 4 cases."""
    run = project.parent / "run"
    code, _, err = cli("eval", project, "--out", run, "--limit", "4", "--no-progress", "-q")
    assert code in (0, 1), err
    return run
