"""relcheck at a provider's limit: ``python bench/ratelimit.py`` (see README, "Benchmark").

Each scenario starts ``bench/ratelimit_server.py`` in its own process on loopback and runs the
same one-step eval against it with relcheck's default flags, with ``--concurrency 8`` and with
``--concurrency 64``, and — when ``/tmp/inspect-venv`` holds Inspect AI (``--inspect-python``) —
with Inspect AI's defaults. For each run it reports the **serving time** (the server's first
request to its last answer) over the **ideal** (cases / rate limit; for the concurrency cap,
cases × mean latency / cap; for TPM, cases × tokens used per case / the token rate), and 429
responses over requests. Targets, for the default flags: ≤ 1.10× the ideal, ≤ 2% 429s.

Next to each ratio it prints the **perfect client's** (:func:`perfect_floor`): the serving time
a client that knew the limits from the start would have needed on the same latency draws
(the server reports each answered request's), over the same ideal. The ideal counts no
latency, so at 2 s log-normal latency even that client is well above 1.10× unless the run is
long: its last answers come ~2-4 s after its last request is sent.

The case counts are scaled so that each run's ideal is about ``--seconds`` (default 8 s), which
keeps the whole benchmark to a few minutes; the issue's 600-case runs are 15-60 s each. Ratios
are what matter, but a shorter run weighs its first and last round trips more (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ratelimit_server import LimitConfig, burst_capacity, in_process, reset, stats  # noqa: E402

PROMPT = "Answer with the word ok."
LONG_PROMPT = "Answer with the word ok. " + "lorem ipsum dolor sit amet " * 14  # ~400 characters


@dataclass(frozen=True)
class Scenario:
    name: str
    server: LimitConfig
    api: str = "openai"
    prompt: str = PROMPT
    max_tokens: int | None = None

    def _buckets(self) -> list[tuple[float, float]]:
        """Each of the server's buckets (requests, tokens) in cases: cases per second, and
        how many cases it holds when full."""
        c = self.server
        buckets = []
        if c.rpm:
            buckets.append((c.rpm / 60, burst_capacity(c.rpm / 60, c.burst_s)))
        if c.tpm:
            used = -(-len(self.prompt) // 4) + min(self.max_tokens or 256, c.completion_tokens)
            buckets.append((c.tpm / 60 / used, burst_capacity(c.tpm / 60, c.burst_s) / used))
        return buckets

    def rate_per_s(self) -> float:
        """Cases per second at the limit."""
        c = self.server
        rates = [rate for rate, _ in self._buckets()]
        if c.concurrency_cap:
            # the server's latency is log-normal with median latency_ms: its mean, exp(σ²/2) more,
            # is what a slot is busy for on average
            mean_s = c.latency_ms / 1000 * math.exp(c.sigma**2 / 2)
            rates.append(c.concurrency_cap / mean_s)
        return min(rates)

    def pace(self) -> tuple[float, float]:
        """Cases per second the server's buckets allow, and how many of them at once (the
        bucket's burst); infinite for a provider with only a concurrency cap."""
        return min(self._buckets(), default=(math.inf, math.inf))


def perfect_floor(latencies: list[float], rate: float, burst: float, cap: int | None) -> float:
    """The serving time a perfect client would need on the same draws: one that knows the
    limits from the start, sends the first ``burst`` requests at once and then one every
    ``1 / rate`` s (never a 429), and with a concurrency ``cap`` sends each request as soon as a
    slot is free. Request ``i`` takes ``latencies[i]`` (the server's draws, in order of
    arrival). A lower bound for any client (for the TPM case an optimistic one: the bucket is
    counted in whole cases)."""
    slots: list[float] = []
    end = 0.0
    for i, latency in enumerate(latencies):
        start = 0.0 if i < burst else (i - burst + 1) / rate
        if cap is not None:
            if len(slots) >= cap:
                start = max(start, heapq.heappop(slots))
            heapq.heappush(slots, start + latency)
        end = max(end, start + latency)
    return end


SCENARIOS = [
    Scenario("600 RPM, 300 ms", LimitConfig(rpm=600, latency_ms=300)),
    Scenario("2,400 RPM, 300 ms", LimitConfig(rpm=2400, latency_ms=300)),
    Scenario("6,000 RPM, 300 ms", LimitConfig(rpm=6000, latency_ms=300)),
    Scenario("2,400 RPM, 2 s", LimitConfig(rpm=2400, latency_ms=2000)),
    Scenario(
        "TPM-bound: 60,000 TPM (6,000 RPM), 300 ms",
        LimitConfig(rpm=6000, tpm=60_000, latency_ms=300),
        prompt=LONG_PROMPT,
        max_tokens=150,
    ),
    Scenario("concurrency cap 16, 300 ms", LimitConfig(concurrency_cap=16, latency_ms=300, style="none")),
    Scenario(
        "2,400 RPM, 300 ms, Anthropic headers",
        LimitConfig(rpm=2400, latency_ms=300, style="anthropic"),
        api="anthropic",
    ),
]

PIPELINE = """\
version: 1
name: bench-ratelimit
evalset: cases.jsonl
endpoints:
  llm: {endpoint}
steps:
  - id: answer
    endpoint: llm
    prompt: {prompt}
    params: {params}
    checks: [{{type: equals, value: ok}}]
"""

INSPECT_TASK = """\
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import match
from inspect_ai.solver import generate


@task
def bench():
    return Task(dataset=[Sample(input={prompt!r}, target="ok", id=i) for i in range({n})],
                solver=generate(), scorer=match())
"""


def _pipeline(scenario: Scenario, url: str) -> str:
    if scenario.api == "anthropic":
        endpoint = {
            "type": "anthropic",
            "base_url": url,
            "model": "bench",
            "timeout_s": 60,
            "max_tokens": scenario.max_tokens or 256,
        }
        params: dict[str, object] = {}
    else:
        endpoint = {"type": "openai", "base_url": f"{url}/v1", "model": "bench", "timeout_s": 60}
        params = {"max_tokens": scenario.max_tokens} if scenario.max_tokens else {}
    return PIPELINE.format(endpoint=json.dumps(endpoint), prompt=json.dumps(scenario.prompt), params=json.dumps(params))


def run_relcheck(work: Path, concurrency: int | None) -> dict[str, object]:
    from reliability_cli.runner import RunOptions, run_eval

    out = work / f"run-{concurrency or 'default'}"
    results = run_eval(str(work / "pipeline.yaml"), RunOptions(out=str(out), concurrency=concurrency)).results.to_dict()
    endpoints = results.get("endpoints") or [{}]
    e2e = results["end_to_end"]
    return {"passed": e2e["passed"], "total": e2e["total"], "endpoint": endpoints[0]}


def run_inspect(python: str, work: Path, scenario: Scenario, url: str, n: int) -> dict[str, object]:
    (work / "inspect_task.py").write_text(INSPECT_TASK.format(prompt=scenario.prompt, n=n))
    args = [
        python,
        "-m",
        "inspect_ai",
        "eval",
        "inspect_task.py",
        "--model",
        "openai/bench",
        "--model-base-url",
        f"{url}/v1",
        "-M",
        "responses_api=false",
        "--log-dir",
        str(work / "inspect-logs"),
        "--display",
        "none",
    ]
    if scenario.max_tokens:
        args += ["--max-tokens", str(scenario.max_tokens)]
    env = {
        **os.environ,
        "OPENAI_API_KEY": "bench",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "INSPECT_LOG_LEVEL": "warning",
    }
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    return {"returncode": proc.returncode, "stderr": proc.stderr[-400:] if proc.returncode else ""}


def measure(base_url: str, scenario: Scenario, ideal: float, requests_wanted: int) -> dict[str, float]:
    st = stats(base_url)
    serving = (st["last_at"] or 0) - (st["first_at"] or 0)
    throttled = st["status_429_rate"] + st["status_429_cap"]
    floor = perfect_floor(st["latencies"], *scenario.pace(), scenario.server.concurrency_cap)
    return {
        "serving_s": round(serving, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(serving / ideal, 3),
        # what a perfect client would have needed on the same latency draws, over the ideal
        "floor_s": round(floor, 3),
        "floor_ratio": round(floor / ideal, 3),
        # the first request to the last answered one's arrival, and from there to the last answer
        "sending_s": round((st["last_ok_arrival_at"] or 0) - (st["first_at"] or 0), 3),
        "tail_s": round((st["last_at"] or 0) - (st["last_ok_arrival_at"] or 0), 3),
        "requests": st["requests"],
        "status_429": throttled,
        "share_429": round(throttled / st["requests"], 4) if st["requests"] else 0.0,
        "answered": st["ok"],
        "wanted": requests_wanted,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="Each run's ideal serving time (scales the cases).")
    parser.add_argument("--quick", action="store_true", help="One scenario, 2 s, default flags only (smoke test).")
    parser.add_argument(
        "--inspect-python",
        default="/tmp/inspect-venv/bin/python",
        help="A Python with inspect-ai installed (skipped when missing).",
    )
    parser.add_argument("--only", default="", help="Run only scenarios whose name contains this.")
    parser.add_argument("--json", default="", help="Also write the figures here.")
    parser.add_argument("--cases", type=int, default=0, help="Cases per run (overrides --seconds).")
    parser.add_argument(
        "--clients",
        default="relcheck,inspect",
        help="relcheck, inspect or both (comma-separated); relcheck-default: only the default flags.",
    )
    args = parser.parse_args()
    scenarios = SCENARIOS[1:2] if args.quick else [s for s in SCENARIOS if args.only in s.name]
    seconds = 2.0 if args.quick else args.seconds
    clients: list[tuple[str, int | None]] = []
    if "relcheck" in args.clients:
        clients.append(("relcheck default", None))
        if not args.quick and "default" not in args.clients:
            clients += [("relcheck --concurrency 8", 8), ("relcheck --concurrency 64", 64)]
    inspect = Path(args.inspect_python)
    use_inspect = not args.quick and inspect.exists() and "inspect" in args.clients
    print(
        f"rate-limit benchmark on {os.cpu_count()} CPUs; each run's ideal ≈ {seconds:g} s"
        + ("" if use_inspect or args.quick else f"; Inspect AI skipped ({inspect} not found)"),
        flush=True,
    )
    rows = []
    missed = 0
    with tempfile.TemporaryDirectory(prefix="relcheck-ratelimit-") as tmp:
        for k, scenario in enumerate(scenarios):
            n = args.cases or max(20, round(scenario.rate_per_s() * seconds))
            ideal = n / scenario.rate_per_s()
            work = Path(tmp) / f"s{k}"
            work.mkdir()
            with in_process(replace(scenario.server, seed=k)) as url:
                (work / "pipeline.yaml").write_text(_pipeline(scenario, url))
                (work / "cases.jsonl").write_text(
                    "".join(json.dumps({"id": f"c{i:05d}", "vars": {}, "expect": {}}) + "\n" for i in range(n))
                )
                runs = list(clients) + (
                    [("Inspect AI (defaults)", -1)] if use_inspect and scenario.api == "openai" else []
                )
                for label, conc in runs:
                    reset(url)
                    started = time.perf_counter()
                    extra: dict[str, object] = {}
                    if conc == -1:
                        extra = run_inspect(str(inspect), work, scenario, url, n)
                    else:
                        extra = run_relcheck(work, conc)
                    wall = time.perf_counter() - started
                    row = {
                        "scenario": scenario.name,
                        "client": label,
                        "cases": n,
                        "wall_s": round(wall, 2),
                        **measure(url, scenario, ideal, n),
                        **extra,
                    }
                    rows.append(row)
                    ok = row["ratio"] <= 1.10 and row["share_429"] <= 0.02
                    if label == "relcheck default" and not ok:
                        missed += 1
                    print(
                        f"  {scenario.name:<44} {label:<26} {n:>5} cases  serving {row['serving_s']:>6.2f} s "
                        f"= {row['ratio']:.2f}× ideal  429s {row['status_429']:>6} ({row['share_429']:.1%})"
                        f"  perfect client {row['floor_ratio']:.2f}×"
                        + (f"  [exit {row.get('returncode')}: {row.get('stderr')}]" if row.get("returncode") else ""),
                        flush=True,
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"\ndefault flags: {len(scenarios) - missed} of {len(scenarios)} scenarios within 1.10× and 2% 429s")
    return 0 if args.quick or not missed else 1


if __name__ == "__main__":
    sys.exit(main())
