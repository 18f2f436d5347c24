"""relcheck run the way a user runs it: CliRunner and real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import SIX, journal_text, run_relcheck


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("relcheck ")
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("eval", "validate", "report", "simulate", "schema", "init"):
        assert command in out


def test_every_command_has_help(cli):
    from reliability_cli.cli import app

    for command in app.registered_commands:
        name = command.name
        code, out, _ = cli(name, "--help")
        assert code == 0, name
        assert (command.callback.__doc__ or "").strip(), f"{name} has no docstring for --help"


def test_eval_subprocess_exit_0_and_results(tmp_path):
    out = tmp_path / "run"
    proc = run_relcheck("eval", SIX, "--out", out, "--limit", "200", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "End to end:" in proc.stdout and "Verdict: PASS (exit 0)" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "relcheck.results/v1"
    assert results["verdict"] == "pass" and results["exit_code"] == 0
    assert set(results) >= {"run", "steps", "end_to_end", "what_if", "gates", "units"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["flags"]["limit"] == 200 and manifest["pipeline_hash"]
    header = json.loads(journal_text(out / "attempts.jsonl").splitlines()[0])
    assert header["schema"] == "relcheck.attempts/v1" and header["pipeline_hash"] == manifest["pipeline_hash"]


def test_failed_gate_exits_1(cli, tmp_path):
    code, out, _ = cli(
        "eval", SIX, "--out", tmp_path / "r", "--min-e2e", "0.95", "--min-step", "extract=0.5", "--no-progress"
    )
    assert code == 1
    assert "FAIL  end_to_end" in out and "PASS  step:extract" in out
    assert "Verdict: FAIL (exit 1)" in out
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    gate = next(g for g in results["gates"] if g["name"] == "end_to_end")
    assert gate["threshold"] == 0.95 and gate["passed"] is False and gate["bound"] is None
    assert results["run"]["gate_settings"]["end_to_end_min"] == 0.95


def test_json_to_stdout(cli, tmp_path):
    code, out, _ = cli("eval", SIX, "--out", tmp_path / "r", "--limit", "50", "--json", "-", "--no-progress")
    assert code == 0
    assert json.loads(out)["end_to_end"]["total"] == 50


def test_out_dir_never_overwritten(cli, tmp_path):
    target = tmp_path / "r"
    target.mkdir()
    (target / "mine.txt").write_text("precious")
    code, _, err = cli("eval", SIX, "--out", target, "--limit", "5")
    assert code == 2 and "not empty" in err
    assert (target / "mine.txt").read_text() == "precious"


def test_filter_tag_and_limit(cli, tmp_path):
    code, out, _ = cli(
        "eval", SIX, "--out", tmp_path / "r", "--filter-tag", "billing", "--limit", "30", "--json", "-", "--no-progress"
    )
    results = json.loads(out)
    cases = {u["case"] for u in results["units"]}
    assert len(cases) == 30
    by_id = {json.loads(line)["id"]: json.loads(line) for line in (SIX.parent / "cases.jsonl").read_text().splitlines()}
    assert all("billing" in by_id[c]["tags"] for c in cases)


def test_validate_counts_units(cli):
    code, out, _ = cli("validate", SIX, "--trials", "2", "--retries", "1")
    assert code == 0
    assert "1200 cases, 2400 units, at most 28800 requests" in out


def test_simulate_matches_formula(cli):
    code, out, _ = cli("simulate", "--steps", "6", "--p", "0.97", "--runs", "20000", "--json", "-")
    data = json.loads(out)
    assert abs(data["analytic"] - 0.97**6) < 1e-12
    assert data["ci"][0] <= data["analytic"] <= data["ci"][1]
    code, out, _ = cli("simulate", "--steps", "6", "--p", "0.97", "--retries", "1", "--runs", "20000")
    assert code == 0 and "99.5%" in out


def test_schema_is_json_schema(cli):
    code, out, _ = cli("schema")
    schema = json.loads(out)
    assert code == 0 and "steps" in schema["properties"]


def test_init_scaffold_runs_offline_and_never_overwrites(cli, tmp_path):
    code, out, _ = cli("init", tmp_path / "p")
    assert code == 0
    code, _, err = cli("eval", tmp_path / "p" / "pipeline.yaml", "--out", tmp_path / "run", "--no-progress")
    assert code in (0, 1), err
    before = (tmp_path / "p" / "pipeline.yaml").read_text()
    code, _, err = cli("init", tmp_path / "p")
    assert code == 2 and "already exists" in err
    assert (tmp_path / "p" / "pipeline.yaml").read_text() == before


def test_report_rerenders_a_run(cli, tmp_path):
    cli("eval", SIX, "--out", tmp_path / "r", "--limit", "40", "--no-progress")
    code, out, _ = cli("report", tmp_path / "r")
    assert code == 0 and "End to end: " in out
    code, out, _ = cli("report", tmp_path / "r" / "results.json", "--format", "json")
    assert json.loads(out)["end_to_end"]["total"] == 40
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = cli("report", bad)
    assert code == 2 and "invalid JSON" in err and "Traceback" not in err


def test_cli_start_imports_no_pandas_or_scipy():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from reliability_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0\n"
        f"r = CliRunner().invoke(app, ['validate', {str(SIX)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('pandas', 'scipy', 'numpy', 'httpx', 'aiohttp') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_help_builds_no_model_and_validate_loads_no_engine():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from reliability_cli.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print(','.join(m for m in ('reliability_cli.config.models', 'jinja2') if m in sys.modules))\n"
        f"assert CliRunner().invoke(app, ['validate', {str(SIX)!r}]).exit_code == 0\n"
        "print(','.join(m for m in ('asyncio', 'reliability_cli.runner.engine', 'reliability_cli.journal')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["", ""]


def test_an_eval_of_in_process_endpoints_imports_no_http_stack(tmp_path):
    # httpx imports its own CLI (click, rich.syntax, pygments): ~10 MB and 0.1 s that a run of
    # mock and python endpoints has no use for (the response cache must not pull it in either)
    args = ["eval", str(SIX), "-q", "--limit", "20", "--out", str(tmp_path / "run")]
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from reliability_cli.cli import app\n"
        f"r = CliRunner().invoke(app, {args!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "print(','.join(m for m in ('httpx', 'aiohttp', 'pygments') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def _main_script(argv: list[str], before: str = "") -> str:
    return (
        "import atexit, sys\n"
        f"{before}"
        f"sys.argv = ['relcheck', *{argv!r}]\n"
        "from reliability_cli.cli import main\n"
        "main()\n"
    )


def test_the_entry_point_exits_fast_but_completely(tmp_path):
    # main() ends the process without the interpreter's teardown: stdout must still be whole,
    # atexit handlers must still run, and each exit code must come through unchanged
    marker = tmp_path / "atexit-ran"
    before = f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
    argv = ["eval", str(SIX), "--out", str(tmp_path / "r"), "--json", "-", "--no-progress", "--min-e2e", "0.99"]
    proc = subprocess.run(
        [sys.executable, "-c", _main_script(argv, before)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr  # the gate failed: exit 1, not 0
    document = json.loads(proc.stdout)  # every byte of the (large) JSON document was written
    assert document["verdict"] == "fail" and len(document["units"]) == document["end_to_end"]["total"]
    assert marker.read_text() == "ran"
    assert json.loads((tmp_path / "r" / "results.json").read_text())["verdict"] == "fail"

    proc = subprocess.run(
        [sys.executable, "-c", _main_script(["validate", str(tmp_path / "missing.yaml")])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_the_entry_point_waits_for_a_thread_still_running(tmp_path):
    # with another thread alive the exit is Python's own, which lets that thread finish
    done = tmp_path / "thread-done"
    before = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(done)!r}, 'w').write('done'))).start()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _main_script(["--version"], before)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("relcheck ")
    assert done.read_text() == "done"
