"""``validate``: check a pipeline, its eval sets, template references and env vars, calling nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Pipeline
from ..errors import ConfigError, EvalSetError, MultipleErrors, RelcheckError
from ..templating import Template, references
from .run import RunOptions, prepare


@dataclass
class Validation:
    """What ``relcheck validate`` found."""

    pipeline: str
    cases: int
    units: int
    steps: int
    max_requests: int
    max_cost_usd: float | None
    warnings: list[str] = field(default_factory=list)
    expected_cost_usd: float | None = None


def validate(pipeline_path: str, options: RunOptions | None = None) -> Validation:
    """Load everything and check it, making no call (``relcheck validate``).

    Args:
        pipeline_path: The ``pipeline.yaml`` file.
        options: The run's options (eval sets, flags); default ones when None.

    Returns:
        The figures ``validate`` prints (cases, units, request bound, cost bound) and its
        warnings.

    Raises:
        RelcheckError: the pipeline, an eval set, a template reference or an env var is wrong.
    """
    options = options or RunOptions()
    prep = prepare(pipeline_path, options)
    pipeline, evalset = prep.pipeline, prep.evalset
    problems: list[RelcheckError] = []
    warnings: list[str] = []
    env = os.environ if options.environ is None else options.environ
    for name, ep in pipeline.endpoints.items():
        key_env = getattr(ep, "api_key_env", None)
        if key_env and key_env not in env and not options.replay:
            problems.append(
                ConfigError(
                    f"endpoint '{name}' needs the environment variable {key_env} (api_key_env), which is not set",
                    pipeline.positions.locate(("endpoints", name, "api_key_env")),
                    hint=f"export {key_env}=…, or run offline with --endpoint {name}=mock or --replay CASSETTE",
                )
            )
        if ep.type == "python":
            from ..endpoints.python import import_callable

            try:
                import_callable(ep.callable)
            except ConfigError as exc:
                problems.append(ConfigError(exc.message, pipeline.positions.locate(("endpoints", name, "callable"))))
    for step in pipeline.steps:
        for plan in step.checks:
            if plan.type in ("python", "not-python"):
                from ..endpoints.python import import_callable

                try:
                    import_callable(str(plan.spec.get("callable")))
                except ConfigError as exc:
                    problems.append(ConfigError(exc.message, plan.location))
    for path, source in _templates(pipeline):
        for ref in references(source):
            if len(ref) != 2 or ref[0] not in ("vars", "expect"):
                continue
            missing = next((c for c in evalset.cases if ref[1] not in (c.vars if ref[0] == "vars" else c.expect)), None)
            if missing is None:
                continue
            where = pipeline.positions.locate(path)
            if ref[0] == "vars":
                problems.append(
                    EvalSetError(
                        f"case '{missing.id}' has no vars.{ref[1]}, which the template at {where} uses",
                        missing.location,
                    )
                )
            else:
                warnings.append(
                    f"case '{missing.id}' ({missing.location}) has no expect.{ref[1]}, "
                    f"used at {where}: that case will end in a template error"
                )
    if not problems and any(ep.type == "mcp" for ep in pipeline.endpoints.values()):
        from ..endpoints.mcp_check import check_tool_calls  # starts or connects to each MCP server

        problems.extend(check_tool_calls(pipeline, evalset.cases, options.replay, options.environ))
    if problems:
        raise problems[0] if len(problems) == 1 else MultipleErrors(problems[:20])
    per_unit = sum(s.retry.max_attempts for s in pipeline.steps)
    judges = sum(s.retry.max_attempts for s in pipeline.steps for c in s.checks if c.type == "llm-rubric")
    per_unit = (per_unit + judges) * (2 if options.isolate else 1)
    cost = _cost(pipeline, evalset.cases, prep.units, options)
    return Validation(
        str(pipeline_path),
        len(evalset),
        prep.units,
        len(pipeline.steps),
        prep.units * per_unit,
        None if cost is None else cost[0],
        warnings,
        None if cost is None else cost[1],
    )


def _templates(pipeline: Pipeline) -> Iterator[tuple[tuple[Any, ...], str]]:
    for step in pipeline.steps:
        for j, (_, tpl) in enumerate(step.messages):
            path = ("steps", step.index, "prompt") + ((j, "content") if len(step.messages) > 1 else ())
            yield path, tpl.source
        base = ("final",) if step.final else ("steps", step.index)
        if step.output is not None:  # graph pipelines
            yield base + ("output",), step.output.source
        for k, plan in enumerate(step.checks):
            for key, value in plan.templated.items():
                for source in _sources(value):
                    yield base + ("checks", k, key), source
    graph = pipeline.model.graph
    if graph is not None:
        for source in _sources(graph.input):
            yield ("graph", "input"), source
    for name, ep in pipeline.endpoints.items():
        if getattr(ep, "reply", None) is not None:
            for source in _sources(ep.reply):
                yield ("endpoints", name, "reply"), source


def _sources(value: Any) -> Iterator[str]:
    if isinstance(value, Template):
        yield value.source
    elif isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _sources(v)
    elif isinstance(value, list):
        for v in value:
            yield from _sources(v)


TYPICAL_OUTPUT_TOKENS = 256
"""The reply length the expected cost assumes (a step's ``max_tokens`` when that is lower)."""
UNKNOWN_INPUT_TOKENS = 256
"""What the cost bound adds to a prompt for the values templates put in it."""


def _cost(pipeline: Pipeline, cases: Any, units: int, options: RunOptions) -> tuple[float, float] | None:
    """The cost bound and the expected cost in USD, or None when no endpoint has a ``price``.

    Bound: every attempt retried to its step's ``retry.max_attempts``, every reply
    ``max_tokens`` long (4096 where none is set), each prompt its template at 4 characters a
    token plus 256 tokens, and an ``llm-rubric`` judge call per attempt (its reply
    ``max_tokens`` long too). Expected: one attempt per step and one judge call per rubric,
    replies of :data:`TYPICAL_OUTPUT_TOKENS` (or ``max_tokens`` if lower), each prompt its
    template plus the eval set's average ``vars`` at 4 characters a token.
    """
    factor = units * (2 if options.isolate else 1)
    vars_tokens = _mean_vars_chars(cases) / 4
    bound = expected = 0.0
    priced = False
    for step in pipeline.steps:
        ep = pipeline.endpoints.get(step.endpoint)
        price = getattr(ep, "price", None)
        template_tokens = sum(len(t.source) for _, t in step.messages) / 4
        out_max = _max_tokens(step.params, ep)
        out_typical = min(out_max, TYPICAL_OUTPUT_TOKENS)
        attempts = step.retry.max_attempts
        if price is not None:
            priced = True
            bound += _price(price, template_tokens + UNKNOWN_INPUT_TOKENS, out_max) * attempts * factor
            expected += _price(price, template_tokens + vars_tokens, out_typical) * factor
        for plan in step.checks:
            if plan.type != "llm-rubric":
                continue
            judge = pipeline.endpoints.get(str(plan.spec.get("endpoint")))
            judge_price = getattr(judge, "price", None)
            if judge_price is None:
                continue
            priced = True
            rubric = plan.templated.get("rubric", plan.spec.get("rubric"))
            rubric_tokens = len(getattr(rubric, "source", rubric) or "") / 4 + UNKNOWN_INPUT_TOKENS
            judge_max = _max_tokens(None, judge)
            bound += _price(judge_price, rubric_tokens + out_max, judge_max) * attempts * factor
            expected += _price(judge_price, rubric_tokens + out_typical, min(judge_max, TYPICAL_OUTPUT_TOKENS)) * factor
    return (round(bound, 4), round(expected, 4)) if priced else None


def _price(price: Any, input_tokens: float, output_tokens: float) -> float:
    return (input_tokens * price.input + output_tokens * price.output) / 1e6


def _max_tokens(params: Any, ep: Any) -> int:
    given = params.get("max_tokens") if isinstance(params, Mapping) else None
    return int(given or getattr(ep, "max_tokens", 0) or 4096)


def _mean_vars_chars(cases: Any) -> float:
    total = n = 0
    for case in cases:
        n += 1
        total += sum(len(v) if isinstance(v, str) else len(str(v)) for v in case.vars.values())
    return total / n if n else 0.0
