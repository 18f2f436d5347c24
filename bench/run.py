"""relcheck's benchmark: ``python bench/run.py`` (see README, "Benchmark").

Measures, in one run, on loopback only, with bounded loops:

  (a) 2,000 single-step units at concurrency 64 against the local OpenAI-compatible mock
      server with no added latency: relcheck's wall time vs a bare asyncio aiohttp loop and a
      bare httpx loop sending the same requests (target: ≤ 1.5× the aiohttp loop);
  (b) the same with 50 ms server latency (target: ≤ 1.25× units × latency / concurrency);
  (c) the bundled six-step eval set scaled to 10,000 cases on the in-process mock
      (target: ≥ 20,000 step attempts per second);
  (d) 100,000 cases on the mock: peak RSS (target: ≤ 250 MB, ≤ 50 MB more than 10,000), and
      with ``--json FILE`` (target: ≤ 250 MB, ≤ 10 MB more than without);
  (e) ``relcheck --help`` and ``relcheck validate`` of the bundled set (target: ≤ 0.3 s).

Prints each figure with its target and ratio; exits 1 when a target is missed and 2 when a
measurement could not run (for example, the ``openai`` endpoint type is not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIX = ROOT / "evalsets" / "six-step-agent"
BODY = {"model": "bench", "messages": [{"role": "user", "content": "REPLY: ok"}], "temperature": 0}

results: list[dict[str, object]] = []


def record(name: str, value: float, target: float, unit: str, higher_is_better: bool = False, note: str = "") -> None:
    ok = value >= target if higher_is_better else value <= target
    results.append({"name": name, "value": value, "target": target, "unit": unit, "ok": ok, "note": note})
    sign = "≥" if higher_is_better else "≤"
    print(f"  {'PASS' if ok else 'MISS'}  {name}: {value:,.3f} {unit} (target {sign} {target:g}) {note}", flush=True)


def skip(name: str, why: str) -> None:
    results.append({"name": name, "value": None, "ok": None, "note": why})
    print(f"  SKIP  {name}: {why}", flush=True)


# ---------------------------------------------------------------- the mock server, in its own process


def _serve(latency_ms: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from reliability_cli.mockserver import FaultConfig, serve

    serve(FaultConfig(latency_ms=latency_ms), on_ready=queue.put)


class Server:
    """The OpenAI-compatible mock server on loopback, in a child process (its own core)."""

    def __init__(self, latency_ms: float) -> None:
        self.queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        self.proc = multiprocessing.Process(target=_serve, args=(latency_ms, self.queue), daemon=True)

    def __enter__(self) -> str:
        self.proc.start()
        return str(self.queue.get(timeout=30))

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)


# ---------------------------------------------------------------- bare client loops (the baseline)


async def _aiohttp_loop(url: str, n: int, concurrency: int) -> float:
    import aiohttp

    left = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in left:
                async with session.post(url, json=BODY) as resp:
                    (await resp.json())["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def _httpx_objects_loop(url: str, n: int, concurrency: int) -> float:
    """The aiohttp loop with each exchange wrapped in ``httpx.Request``/``httpx.Response``,
    and nothing else: the least any client whose HTTP API is httpx can cost over aiohttp."""
    import aiohttp
    import httpx

    left = iter(range(n))
    target = httpx.URL(url)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in left:
                request = httpx.Request("POST", target, headers=headers, content=json.dumps(BODY).encode())
                async with session.post(url, headers=request.headers.multi_items(), data=request.content) as resp:
                    response = httpx.Response(
                        resp.status, headers=resp.raw_headers, content=await resp.read(), request=request
                    )
                response.json()["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def _httpx_loop(url: str, n: int, concurrency: int) -> float:
    import httpx

    left = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            for _ in left:
                resp = await client.post(url, json=BODY)
                resp.json()["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


# ---------------------------------------------------------------- relcheck runs

HTTP_PIPELINE = """\
version: 1
name: bench-http
evalset: cases.jsonl
endpoints:
  llm:
    type: openai
    base_url: {base_url}/v1
    model: bench
    api_key_env: RELCHECK_BENCH_KEY
    max_concurrency: {concurrency}
    timeout_s: 60
steps:
  - id: answer
    endpoint: llm
    prompt: "REPLY: ok"
    params: {{temperature: 0}}
    checks: [{{type: equals, value: ok}}]
"""


def _write_cases(path: Path, n: int, template: list[dict] | None = None) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            case = dict(template[i % len(template)]) if template else {"vars": {}, "expect": {}}
            case["id"] = f"c{i:06d}"
            fh.write(json.dumps(case) + "\n")


def _run_eval(pipeline: Path, out: Path, concurrency: int, evalset: Path | None = None) -> tuple[float, dict]:
    from reliability_cli.runner import RunOptions, run_eval

    options = RunOptions(
        evalsets=[str(evalset)] if evalset else (),
        concurrency=concurrency,
        out=str(out),
        environ={**os.environ, "RELCHECK_BENCH_KEY": "bench"},
    )
    start = time.perf_counter()
    outcome = run_eval(str(pipeline), options)
    return time.perf_counter() - start, outcome.results


def bench_http(tmp: Path, latency_ms: float, units: int, concurrency: int) -> None:
    label = "a" if latency_ms == 0 else "b"
    os.environ["RELCHECK_BENCH_KEY"] = "bench"
    with Server(latency_ms) as base_url:
        work = tmp / f"http-{label}"
        work.mkdir()
        (work / "pipeline.yaml").write_text(HTTP_PIPELINE.format(base_url=base_url, concurrency=concurrency))
        _write_cases(work / "cases.jsonl", units)
        url = f"{base_url}/v1/chat/completions"
        asyncio.run(_aiohttp_loop(url, 200, concurrency))  # warm up the server and imports
        bare_aiohttp = min(asyncio.run(_aiohttp_loop(url, units, concurrency)) for _ in range(3))
        httpx_floor = min(asyncio.run(_httpx_objects_loop(url, units, concurrency)) for _ in range(3))
        bare_httpx = min(asyncio.run(_httpx_loop(url, units, concurrency)) for _ in range(2))
        print(
            f"  ({label}) bare loops, {units} requests at concurrency {concurrency}, latency {latency_ms:g} ms: "
            f"aiohttp {bare_aiohttp:.3f} s, httpx (default transport) {bare_httpx:.3f} s",
            flush=True,
        )
        if importlib.util.find_spec("reliability_cli.endpoints.http") is None:
            skip(
                f"({label}) relcheck vs bare loops, {latency_ms:g} ms",
                "the openai endpoint type (reliability_cli/endpoints/http.py) is not installed yet",
            )
            return
        _run_eval(work / "pipeline.yaml", work / "warm", concurrency, None)
        walls = []
        for k in range(3):
            wall, res = _run_eval(work / "pipeline.yaml", work / f"run{k}", concurrency, None)
            assert res.end_to_end.total == units, res.end_to_end
            walls.append(wall)
        wall = min(walls)
    print(
        f"  ({label}) {units} units at concurrency {concurrency}, server latency {latency_ms:g} ms: "
        f"relcheck {wall:.3f} s (runs {', '.join(f'{w:.2f}' for w in walls)}), "
        f"bare aiohttp {bare_aiohttp:.3f} s, bare httpx {bare_httpx:.3f} s",
        flush=True,
    )
    if latency_ms == 0:
        record(
            "(a) relcheck / bare aiohttp",
            wall / bare_aiohttp,
            1.5,
            "×",
            note=f"(httpx default transport / aiohttp: {bare_httpx / bare_aiohttp:.2f}×)",
        )
        print(
            f"  (a) floor: the aiohttp loop wrapping each exchange in httpx.Request/Response, nothing else: "
            f"{httpx_floor:.3f} s = {httpx_floor / bare_aiohttp:.2f}× the bare aiohttp loop; "
            f"relcheck = {wall / httpx_floor:.2f}× that floor",
            flush=True,
        )
    else:
        ideal = units * latency_ms / 1000 / concurrency
        record("(b) relcheck / ideal", wall / ideal, 1.25, "×", note=f"(ideal {ideal:.3f} s)")


def bench_throughput(tmp: Path, cases: int) -> None:
    template = [json.loads(line) for line in (SIX / "cases.jsonl").read_text().splitlines() if line.strip()]
    work = tmp / "six"
    work.mkdir()
    _write_cases(work / "cases.jsonl", cases, template)
    (work / "pipeline.yaml").write_text((SIX / "pipeline.yaml").read_text())
    _run_eval(work / "pipeline.yaml", work / "warm", 64, SIX / "cases.jsonl")  # warm-up: imports, caches
    rates, walls = [], []
    for k in range(3):
        wall, res = _run_eval(work / "pipeline.yaml", work / f"run{k}", 64, work / "cases.jsonl")
        rates.append(res.run.requests / res.run.duration_s)
        walls.append(res.run.requests / wall)
    print(
        f"  (c) six-step, {cases:,} cases, concurrency 64: {max(rates):,.0f} attempts/s while running "
        f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); {max(walls):,.0f}/s over the whole call "
        f"including load, analysis and results.json",
        flush=True,
    )
    record("(c) step attempts per second", max(rates), 20_000, "attempts/s", higher_is_better=True)


def _peak_rss_mb(args: list[str], cwd: Path) -> float:
    probe = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=cwd, capture_output=True, text=True, timeout=1800, check=True
    ).stdout.split()
    if out[0] not in ("0", "1"):
        raise RuntimeError(f"relcheck exited {out[0]}")
    return int(out[1]) / 1024


def _memory_args(n: int, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reliability_cli",
        "eval",
        "pipeline.yaml",
        "--evalset",
        f"cases{n}.jsonl",
        "--out",
        f"run{n}{'-'.join(['', *(a.strip('-') for a in extra[::2])])}",
        "--concurrency",
        "64",
        "-q",
        *extra,
    ]


def bench_memory(tmp: Path) -> None:
    template = [json.loads(line) for line in (SIX / "cases.jsonl").read_text().splitlines() if line.strip()]
    work = tmp / "mem"
    work.mkdir()
    (work / "pipeline.yaml").write_text((SIX / "pipeline.yaml").read_text())
    peaks = {}
    for n in (10_000, 100_000):
        _write_cases(work / f"cases{n}.jsonl", n, template)
        peaks[n] = _peak_rss_mb(_memory_args(n, []), work)
    # the same 100,000 cases writing a second copy of results.json (issue 11: it used to double the peak)
    with_json = _peak_rss_mb(_memory_args(100_000, ["--json", "copy.json"]), work)
    assert (work / "copy.json").read_bytes() == (work / "run100000-json" / "results.json").read_bytes()
    print(
        f"  (d) peak RSS: {peaks[10_000]:.1f} MB at 10,000 cases, {peaks[100_000]:.1f} MB at 100,000, "
        f"{with_json:.1f} MB at 100,000 with --json FILE",
        flush=True,
    )
    record("(d) peak RSS at 100,000 cases", peaks[100_000], 250, "MB")
    record("(d) growth 10,000 → 100,000 cases", peaks[100_000] - peaks[10_000], 50, "MB")
    record("(d) peak RSS at 100,000 cases with --json FILE", with_json, 250, "MB")
    record("(d) --json FILE over no --json, 100,000 cases", with_json - peaks[100_000], 10, "MB")


def bench_startup() -> None:
    relcheck = [sys.executable, "-m", "reliability_cli"]
    for name, args in (("--help", ["--help"]), ("validate", ["validate", str(SIX / "pipeline.yaml")])):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(relcheck + args, capture_output=True, check=True, timeout=60)
            times.append(time.perf_counter() - start)
        record(f"(e) relcheck {name}", statistics.median(times), 0.3, "s", note=f"(median of 5; min {min(times):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a smoke test (targets not judged).")
    parser.add_argument(
        "--only", choices=("startup", "throughput", "memory", "http"), help="Measure only these figures."
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    print(f"relcheck benchmark on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relcheck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        wanted = {args.only} if args.only else {"startup", "throughput", "memory", "http"}
        if "startup" in wanted:
            bench_startup()
        if "throughput" in wanted:
            bench_throughput(tmp, 10_000 // scale)
        if "memory" in wanted and not args.quick:
            bench_memory(tmp)
        if "http" in wanted:
            bench_http(tmp, 0, 2000 // scale, 64)
            bench_http(tmp, 50, 2000 // scale, 64)
    missed = [r["name"] for r in results if r["ok"] is False]
    skipped = [r["name"] for r in results if r["ok"] is None]
    print(f"\n{len(results) - len(missed) - len(skipped)} passed, {len(missed)} missed, {len(skipped)} skipped")
    if args.quick:
        return 0
    return 1 if missed else 2 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
