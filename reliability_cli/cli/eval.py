"""``relcheck eval``: run a pipeline over its eval set, report, gate."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from ..errors import UsageError
from .common import handle_errors, write_output


def _parse_min_step(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise UsageError(f"--min-step {item!r}: expected STEP=RATE, e.g. classify=0.99") from None
        if not 0 <= out[name] <= 1:
            raise UsageError(f"--min-step {item!r}: the rate must be between 0 and 1")
    return out


def _parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not (n >= 1 and 1 <= i <= n):
        raise UsageError(f"--shard {text!r}: I must be between 1 and N")
    return i, n


@handle_errors
def eval_command(
    ctx: typer.Context,
    pipeline: Optional[str] = typer.Argument(
        None,
        help="The pipeline YAML file (with --resume: the run's, if omitted).",
        metavar="PIPELINE",
    ),
    evalset: list[str] = typer.Option(
        [], "--evalset", help="Eval set file (repeatable; replaces the pipeline's).", metavar="FILE"
    ),
    trials: int = typer.Option(1, "--trials", min=1, help="Run each case K times.", metavar="K"),
    concurrency: Optional[int] = typer.Option(
        None,
        "--concurrency",
        min=1,
        max=4096,
        help="Hard cap on units in flight. Default: enough for each HTTP endpoint's adaptive controller to bind "
        "(the sum of their max_concurrency, default 256 each; 8 without HTTP endpoints).",
        metavar="N",
    ),
    isolate: bool = typer.Option(False, "--isolate", help="Also run every step with gold upstream outputs."),
    retries: Optional[int] = typer.Option(
        None,
        "--retries",
        min=0,
        max=99,
        help="What-if: every step gets R retries (max_attempts R+1).",
        metavar="R",
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the pipeline's seed.", metavar="SEED"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N cases.", metavar="N"),
    filter_tag: list[str] = typer.Option(
        [], "--filter-tag", help="Only cases with this tag (repeatable).", metavar="TAG"
    ),
    shard: Optional[str] = typer.Option(
        None, "--shard", help="Run shard I of N (I/N); reports, does not gate.", metavar="I/N"
    ),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue the run in RUN_DIR.", metavar="RUN_DIR"),
    retry_errors: bool = typer.Option(
        False, "--retry-errors", help="With --resume: rerun units that ended in infrastructure errors."
    ),
    out: Optional[str] = typer.Option(None, "--out", help="Run directory (must be new or empty).", metavar="DIR"),
    json_out: Optional[str] = typer.Option(
        None, "--json", help="Also write results.json here (- for stdout).", metavar="FILE"
    ),
    junit: Optional[str] = typer.Option(None, "--junit", help="Write JUnit XML here.", metavar="FILE"),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="Write a Markdown summary here.", metavar="FILE"),
    html: Optional[str] = typer.Option(None, "--html", help="Write a self-contained HTML report here.", metavar="FILE"),
    record: Optional[str] = typer.Option(
        None, "--record", help="Record HTTP traffic to this cassette.", metavar="CASSETTE"
    ),
    replay: Optional[str] = typer.Option(
        None, "--replay", help="Answer HTTP requests from this cassette.", metavar="CASSETTE"
    ),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="NAME=mock: swap an endpoint for the mock (repeatable).", metavar="NAME=mock"
    ),
    max_throttle_wait: float = typer.Option(
        120.0,
        "--max-throttle-wait",
        min=0,
        help="Seconds one attempt may wait out 429/503.",
        metavar="SECONDS",
    ),
    max_cost: Optional[float] = typer.Option(
        None,
        "--max-cost",
        min=0,
        help="Stop scheduling once this many USD are spent (exit 3).",
        metavar="USD",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the response cache (.relcheck/cache.sqlite)."),
    cache_only: bool = typer.Option(
        False, "--cache-only", help="Answer only from the response cache; a miss is an error of kind cache_miss."
    ),
    show_failures: int = typer.Option(5, "--show-failures", min=0, help="Failing units to list per step.", metavar="N"),
    min_e2e: Optional[float] = typer.Option(
        None, "--min-e2e", min=0, max=1, help="Gate: minimum end-to-end rate.", metavar="RATE"
    ),
    min_step: list[str] = typer.Option([], "--min-step", help="Gate: STEP=RATE (repeatable).", metavar="STEP=RATE"),
    mode: Optional[str] = typer.Option(None, "--mode", help="Gate mode: point or lower-bound.", metavar="MODE"),
    baseline: Optional[str] = typer.Option(
        None,
        "--baseline",
        help="Baseline results.json for a paired regression gate.",
        metavar="RESULTS",
    ),
    max_drop: Optional[float] = typer.Option(
        None, "--max-drop", min=0, max=1, help="Baseline gate: tolerated drop.", metavar="DROP"
    ),
    alpha: Optional[float] = typer.Option(
        None, "--alpha", min=0, max=1, help="Baseline gate: significance level.", metavar="ALPHA"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict line."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress output on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Run PIPELINE over its eval set; report per-step and end-to-end reliability; gate.

    Exit 0: every gate passed. 1: a gate failed. 2: invalid input, nothing ran.
    3: no trustworthy verdict (infrastructure errors, endpoint rejected, --max-cost).
    130: interrupted; resume with --resume RUN_DIR.
    """
    from ..endpoints.cache import resolve_path
    from ..results.schema import GateOverrides
    from ..runner import RunOptions, run_eval
    from .progress import make_progress
    from .render import emit_reports

    result_changing: dict[str, Any] = dict(
        evalsets=evalset,
        trials=trials,
        isolate=isolate,
        retries=retries,
        seed=seed,
        limit=limit,
        filter_tags=filter_tag,
        shard=_parse_shard(shard),
        endpoint_overrides=endpoint,
    )
    if resume:  # what is not given is the run's: its pipeline path, eval sets and flags
        from ..runner.resume import recorded_options

        param = {"evalsets": "evalset", "filter_tags": "filter_tag", "endpoint_overrides": "endpoint"}
        # typer may vendor its own click: compare the source by name, not by enum identity
        given = {
            field
            for field in result_changing
            if getattr(ctx.get_parameter_source(param.get(field, field)), "name", "") == "COMMANDLINE"
        }
        pipeline, recorded = recorded_options(resume, pipeline, given)
        result_changing.update(recorded)
    elif pipeline is None:
        raise UsageError("missing PIPELINE", hint="relcheck eval PIPELINE, or relcheck eval --resume RUN_DIR")
    options = RunOptions(
        **result_changing,
        concurrency=concurrency,
        resume=resume,
        retry_errors=retry_errors,
        out=out,
        record=record,
        replay=replay,
        max_throttle_wait=max_throttle_wait,
        max_cost=max_cost,
        cache=None if (record or replay) else resolve_path(no_cache=no_cache, cache_only=cache_only),
        cache_only=cache_only,
        gate_overrides=GateOverrides(
            end_to_end_min=min_e2e,
            step_mins=_parse_min_step(min_step),
            mode=mode,
            baseline_path=baseline,
            max_drop=max_drop,
            alpha=alpha,
        ),
        command=["relcheck", *sys.argv[1:]],
        outputs={"--json": json_out, "--junit": junit, "--markdown": markdown, "--html": html},
    )
    progress = make_progress(enabled=not (no_progress or quiet))
    try:
        outcome = run_eval(pipeline, options, on_start=progress.start, on_unit=progress.unit_done)
    finally:
        progress.stop()
    results = outcome.results
    emit_reports(
        results,
        json_out=json_out,
        junit=junit,
        markdown=markdown,
        html=html,
        show_failures=show_failures,
        quiet=quiet,
        json_source=outcome.run_dir / "results.json",  # --json copies it: no second serialisation
    )
    if outcome.exit_code == 130:
        from ..runner.resume import resume_command

        sys.stderr.write(
            "relcheck: interrupted; what finished is saved. Resume with:\n  "
            f"{resume_command(options.command, outcome.run_dir)}\n"
        )
    raise typer.Exit(outcome.exit_code)


__all__ = ["eval_command", "write_output"]
