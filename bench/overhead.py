"""Whole-command overhead (issue item 6): ``python bench/overhead.py``.

Times ``relcheck eval`` as a whole process — start-up, loading, the run, the aggregation of the journal,
``results.json`` and the report — on 2,000 single-step cases against the local mock server with
50 ms latency at ``--concurrency 64`` (ideal: 2,000 × 50 ms / 64 = 1.5625 s; target ≤ 1.4×),
and on one case (what a user pays for any run). Loopback only; best of ``--repeat`` runs.

With ``--promptfoo BIN`` (default ``/tmp/pf/node_modules/.bin/promptfoo``; skipped when it is
not there — install it with ``npm install --prefix /tmp/pf promptfoo``), the same 2,000 cases
are also run through ``promptfoo eval`` against the same server (one ``equals`` assertion per
test, ``--max-concurrency 64``, no cache, telemetry, update check or sharing), timed as a whole
process too (target: relcheck ≥ 10× faster). promptfoo gets a config directory of its own under
the temporary folder, and every proxy variable points at a closed loopback port, so that
nothing it might try to send leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import HTTP_PIPELINE, Server, _write_cases  # noqa: E402


def _eval(work: Path, cases: Path, out: str, concurrency: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability_cli",
            "eval",
            "pipeline.yaml",
            "--evalset",
            str(cases),
            "--out",
            out,
            "--concurrency",
            str(concurrency),
            "--no-progress",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "RELCHECK_BENCH_KEY": "bench",
            "PATH": "/usr/bin:/bin",
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
        },
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-500:] + proc.stderr[-500:])
    return wall


PROMPTFOO_CONFIG = """\
description: relcheck overhead benchmark
prompts:
  - "REPLY: ok {{{{n}}}}"
providers:
  - id: openai:chat:bench
    config:
      apiBaseUrl: {base_url}/v1
      apiKey: bench
      temperature: 0
defaultTest:
  assert:
    - type: contains
      value: ok
tests: file://tests.yaml
"""


def _promptfoo(binary: str, work: Path, base_url: str, n: int) -> float:
    """Whole-process wall time of ``promptfoo eval`` on ``n`` tests."""
    folder = work / "promptfoo"
    folder.mkdir(exist_ok=True)
    (folder / "promptfooconfig.yaml").write_text(PROMPTFOO_CONFIG.format(base_url=base_url))
    (folder / "tests.yaml").write_text("".join(f"- vars: {{n: {i}}}\n" for i in range(n)))
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing leaves
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "PROMPTFOO_CONFIG_DIR": str(folder / ".promptfoo"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "PROMPTFOO_DISABLE_REMOTE_GENERATION": "true",
        "PROMPTFOO_SELF_HOSTED": "1",
        "PROMPTFOO_CACHE_ENABLED": "false",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **{k: closed for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")},
        "OPENAI_API_KEY": "bench",
    }
    start = time.perf_counter()
    proc = subprocess.run(
        [
            binary,
            "eval",
            "-c",
            "promptfooconfig.yaml",
            "--max-concurrency",
            "64",
            "--no-cache",
            "--no-table",
            "--no-progress-bar",
            "--no-write",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 100):  # 100: some assertion failed — still a finished run
        raise RuntimeError(f"promptfoo exit {proc.returncode}: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--promptfoo", default="/tmp/pf/node_modules/.bin/promptfoo")
    args = parser.parse_args()
    use_promptfoo = Path(args.promptfoo).exists()
    with tempfile.TemporaryDirectory(prefix="relcheck-overhead-") as tmp, Server(50) as base_url:
        work = Path(tmp)
        (work / "pipeline.yaml").write_text(HTTP_PIPELINE.format(base_url=base_url, concurrency=64))
        _write_cases(work / "cases.jsonl", 2000)
        _write_cases(work / "one.jsonl", 1)
        _eval(work, work / "one.jsonl", "warm", 64)
        big = min(_eval(work, work / "cases.jsonl", f"big{k}", 64) for k in range(args.repeat))
        one = min(_eval(work, work / "one.jsonl", f"one{k}", 64) for k in range(args.repeat))
        helps = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "reliability_cli", "--help"], capture_output=True, check=True)
            helps.append(time.perf_counter() - start)
        if use_promptfoo:
            _promptfoo(args.promptfoo, work, base_url, 20)  # warm-up (node's first start, the config dir)
            pf = min(_promptfoo(args.promptfoo, work, base_url, 2000) for _ in range(args.repeat))
    ideal = 2000 * 0.05 / 64
    print(
        f"relcheck eval, 2,000 cases, 50 ms, --concurrency 64, whole process: {big:.3f} s = {big / ideal:.2f}× "
        f"the ideal {ideal:.4f} s (target ≤ 1.4×)"
    )
    print(f"relcheck eval, 1 case (50 ms), whole process: {one:.3f} s; relcheck --help: {min(helps):.3f} s")
    if use_promptfoo:
        print(
            f"promptfoo eval, the same 2,000 cases, whole process: {pf:.3f} s = {pf / big:.1f}× relcheck (target ≥ 10×)"
        )
    else:
        print(f"promptfoo: skipped ({args.promptfoo} not found)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0 if big / ideal <= 1.4 else 1


if __name__ == "__main__":
    sys.exit(main())
