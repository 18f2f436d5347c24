"""Plan the steps of a graph pipeline: each step judges one node of the user's graph.

A graph step has ``id``, optional ``node`` (default: the id), ``output``, ``checks``,
``retry`` and ``timeout_s``; ``endpoint``, ``prompt``, ``params`` and ``parse`` belong to
pipeline steps and are refused here. ``final:`` becomes one more step, id ``final``, that
judges the final state once (it is never retried). Templates name only ``vars`` and
``expect`` (``graph.input``), plus ``update`` and ``state`` (a step's ``output`` and checks),
or ``state`` (``final``).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, RelcheckError, TemplateError
from ..templating import Template, compile_template
from . import models as m
from .yamlpos import Path, Positions

FINAL_ID = "final"
GRAPH_ENDPOINT = "langgraph"  # what the results' ``endpoint`` column shows for a graph step
INPUT_NAMES = frozenset({"vars", "expect"})
STEP_NAMES = frozenset({"vars", "expect", "update", "state"})
FINAL_NAMES = frozenset({"vars", "expect", "state"})
_PIPELINE_ONLY = ("endpoint", "prompt", "params", "parse")


def plan_graph_steps(model: m.PipelineModel, positions: Positions) -> tuple[Any, ...]:
    """The :class:`StepPlan` of every judged node, then ``final`` when given.

    Raises:
        ConfigError: a problem with the ``graph:``, ``steps`` or ``final:`` sections.
    """
    from jinja2 import TemplateSyntaxError

    from .pipeline import (
        StepPlan,
        check_gates_and_judges,
        check_refs,
        compile_nested,
        effective_retry,
        one_or_many,
        plan_checks,
    )

    problems: list[RelcheckError] = []

    def compiler(allowed: frozenset[str]) -> Any:
        def template(source: str, path: Path, _earlier: set[str]) -> Template:
            try:
                compiled = compile_template(source)
            except TemplateSyntaxError as exc:
                problems.append(TemplateError(f"template syntax error: {exc.message}", positions.locate(path)))
                return Template(source)
            check_refs(source, path, allowed, positions, problems, where="the template context here")
            return compiled

        return template

    assert model.graph is not None
    compile_nested(model.graph.input, ("graph", "input"), set(), compiler(INPUT_NAMES))
    plans: list[StepPlan] = []
    ids: set[str] = set()
    nodes: dict[str, str] = {}
    fields_set = {i: step.model_fields_set for i, step in enumerate(model.steps)}
    for i, step in enumerate(model.steps):
        sp: Path = ("steps", i)
        for key in _PIPELINE_ONLY:
            if key in fields_set[i]:
                problems.append(
                    ConfigError(
                        f"'{key}' is a key of pipeline steps; a graph step judges a node of the graph",
                        positions.locate(sp + (key,), key=True),
                        hint="name the node with node: (default: the step id), and what checks see with output:",
                    )
                )
        if step.id in ids:
            problems.append(ConfigError(f"duplicate step id '{step.id}'", positions.locate(sp + ("id",))))
        if step.id == FINAL_ID and model.final is not None:
            problems.append(
                ConfigError(f"step id '{FINAL_ID}' is taken by the final: section", positions.locate(sp + ("id",)))
            )
        node = step.node or step.id
        if node in nodes:
            problems.append(
                ConfigError(
                    f"node '{node}' is already judged by step '{nodes[node]}'",
                    positions.locate(sp + (("node",) if step.node else ("id",))),
                )
            )
        nodes[node] = step.id
        ids.add(step.id)
        template = compiler(STEP_NAMES)
        output = template(step.output, sp + ("output",), set()) if step.output is not None else None
        checks = plan_checks(step.checks, sp, set(), template, positions, problems)
        retry = effective_retry(model.defaults.retry, step.retry)
        timeout = step.timeout_s or model.defaults.timeout_s
        plans.append(
            StepPlan(step.id, i, GRAPH_ENDPOINT, (), {}, "text", checks, retry, timeout, node=node, output=output)
        )
    if model.final is not None:
        fp: Path = ("final",)
        template = compiler(FINAL_NAMES)
        final = model.final
        output = template(final.output, fp + ("output",), set()) if final.output is not None else None
        checks = plan_checks(final.checks, fp, set(), template, positions, problems)
        for j, spec in enumerate(final.checks):
            judge = spec.get("endpoint")
            if spec.get("type") == "llm-rubric" and judge is not None and judge not in model.endpoints:
                problems.append(
                    ConfigError(
                        f"llm-rubric names unknown endpoint '{judge}'", positions.locate(fp + ("checks", j, "endpoint"))
                    )
                )
        plans.append(
            StepPlan(
                FINAL_ID,
                len(plans),
                GRAPH_ENDPOINT,
                (),
                {},
                "text",
                checks,
                effective_retry(m.RetryPolicy(max_attempts=1), None),
                model.defaults.timeout_s,
                output=output,
                final=True,
            )
        )
        ids.add(FINAL_ID)
    check_gates_and_judges(model, ids, positions, problems)
    if problems:
        raise one_or_many(problems)
    return tuple(plans)
