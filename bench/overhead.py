"""Whole-command overhead (issue item 6): ``python bench/overhead.py``.

Times ``relcheck eval`` as a whole process — start-up, loading, the run, the pandas aggregation,
``results.json`` and the report — on 2,000 single-step cases against the local mock server with
50 ms latency at ``--concurrency 64`` (ideal: 2,000 × 50 ms / 64 = 1.5625 s; target ≤ 1.4×),
and on one case (what a user pays for any run). Loopback only; best of ``--repeat`` runs.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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
    ideal = 2000 * 0.05 / 64
    print(
        f"relcheck eval, 2,000 cases, 50 ms, --concurrency 64, whole process: {big:.3f} s = {big / ideal:.2f}× "
        f"the ideal {ideal:.4f} s (target ≤ 1.4×)"
    )
    print(f"relcheck eval, 1 case (50 ms), whole process: {one:.3f} s; relcheck --help: {min(helps):.3f} s")
    return 0 if big / ideal <= 1.4 else 1


if __name__ == "__main__":
    sys.exit(main())
