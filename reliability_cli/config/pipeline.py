"""Load a pipeline file: YAML → ``${VAR}`` interpolation → models → compiled templates.

Every problem is reported with file, line, column and key path (:class:`ConfigError`);
independent problems are collected and reported together.
"""

from __future__ import annotations

import contextvars
import difflib
import hashlib
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from .. import scrub
from ..errors import ConfigError, Location, MultipleErrors, RelcheckError, TemplateError
from ..templating import CONTEXT_NAMES, Template, compile_template, compile_value, references
from . import models as m
from .yamlpos import Path, Positions, format_path, load_yaml

_ENV_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
TEMPLATED_CHECK_KEYS = ("value", "arguments", "rubric")


@dataclass(frozen=True)
class Retry:
    """A step's effective retry policy (step keys over ``defaults.retry``)."""

    max_attempts: int
    on: frozenset[str]
    backoff: m.Backoff


@dataclass(frozen=True)
class CheckPlan:
    spec: Mapping[str, Any]  # literal keys
    templated: Mapping[str, Any]  # compiled templates of TEMPLATED_CHECK_KEYS
    location: Location
    source: str = "pipeline"  # or "evalset"

    @property
    def type(self) -> str:
        return str(self.spec["type"])


@dataclass(frozen=True)
class StepPlan:
    id: str
    index: int
    endpoint: str
    messages: tuple[tuple[str, Template], ...]
    params: Mapping[str, Any]
    parse: str
    checks: tuple[CheckPlan, ...]
    retry: Retry
    timeout_s: float
    node: str | None = None  # graph pipelines: the node this step judges (None for ``final``)
    output: Any = None  # graph pipelines: the compiled ``output`` template, or None
    final: bool = False  # graph pipelines: the ``final:`` checks on the final state
    tool: Template | None = None  # MCP steps: the tool's name (a template)
    arguments: Any = None  # MCP steps: compiled ``arguments`` (None: no arguments)


@dataclass(frozen=True)
class Pipeline:
    """A loaded, validated pipeline, ready to run.

    Attributes:
        model: The validated document (the pydantic models that ``relcheck schema`` prints).
        path: The pipeline file.
        positions: Line and column of every key, for messages.
        steps: Each step's compiled plan (templates, checks, retry policy), in order.
        hash: SHA-256 of the file's bytes (recorded in the manifest).
        env_refs: The environment variables the file references (their values are secrets).
    """

    model: m.PipelineModel
    path: FsPath
    positions: Positions
    steps: tuple[StepPlan, ...]
    hash: str
    env_refs: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def endpoints(self) -> Mapping[str, Any]:
        return self.model.endpoints

    def step(self, step_id: str) -> StepPlan:
        """The plan of step ``step_id``.

        Args:
            step_id: The step's ``id``.

        Raises:
            KeyError: no such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def default_evalsets(self) -> list[FsPath]:
        """The eval sets the file's ``evalset:`` names, relative to the pipeline file."""
        value = self.model.evalset
        if value is None:
            return []
        items = [value] if isinstance(value, str) else list(value)
        return [(self.path.parent / item) for item in items]

    def with_retries(self, retries: int) -> Pipeline:
        """What-if: every step's ``max_attempts`` becomes ``retries + 1``.

        Args:
            retries: Retries per step (``--retries``); a graph's final checks are left alone.

        Returns:
            A new :class:`Pipeline`.
        """
        steps = tuple(
            s
            if s.final
            # a graph's final checks judge a state: nothing to retry
            else StepPlan(**{**s.__dict__, "retry": Retry(retries + 1, s.retry.on, s.retry.backoff)})
            for s in self.steps
        )
        return Pipeline(self.model, self.path, self.positions, steps, self.hash, self.env_refs)


def load_pipeline(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Pipeline:
    """Load and validate a pipeline file.

    YAML is loaded with safe loaders only, within alias, depth and size budgets; ``${VAR}``
    references are resolved from ``environ`` and remembered as secrets; templates are compiled
    in the immutable sandbox and checked against earlier steps.

    Args:
        path: The ``pipeline.yaml`` file.
        environ: The environment ``${VAR}`` references are resolved from (default
            ``os.environ``).

    Returns:
        The validated pipeline, with the source position of every key.

    Raises:
        ConfigError: the file cannot be read or is invalid (with its location).
    """
    fs_path = FsPath(path)
    file = str(path)
    text = _read_text(fs_path, file)
    env = os.environ if environ is None else environ
    env_refs: list[str] = []
    problems: list[RelcheckError] = []

    def interpolate(value: str, key_path: Path, pos: tuple[int, int]) -> str:
        def sub(match: re.Match[str]) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            env_refs.append(name)
            if name in env:
                if _reaches_request(key_path):
                    scrub.register(env[name])
                return env[name]
            if default is not None:
                return default
            problems.append(
                ConfigError(
                    f"environment variable {name} is not set",
                    Location(file, pos[0], pos[1], format_path(key_path)),
                    hint=f"export {name}=… or write ${{{name}:-default}}",
                )
            )
            return ""

        if "${" not in value:
            return value
        resolved = _ENV_REF.sub(sub, value)
        if resolved != value:
            unresolved[resolved] = value  # messages quote what the user wrote, not the values
        return resolved

    unresolved: dict[str, str] = {}
    data, positions = load_yaml(text, file, error=ConfigError, data_scalars=True, transform=interpolate)
    if problems:
        raise one_or_many(problems)
    if not isinstance(data, dict):
        line, col = positions.values.get((), (1, 1))
        raise ConfigError(
            "a pipeline file must be a mapping with version, name, endpoints and steps", Location(file, line, col)
        )
    endpoints = data.get("endpoints")
    for config in endpoints.values() if isinstance(endpoints, dict) else ():
        key_env = config.get("api_key_env") if isinstance(config, dict) else None
        if isinstance(key_env, str):
            scrub.register(env.get(key_env))
    token = _UNRESOLVED.set(unresolved)
    try:
        model = _validate_model(data, positions)
    finally:
        _UNRESOLVED.reset(token)
    steps = _plan_steps(model, positions)
    digest = hashlib.sha256(
        json.dumps(model.model_dump(mode="json", by_alias=True), sort_keys=True).encode()
    ).hexdigest()
    return Pipeline(model, fs_path, positions, steps, digest, tuple(sorted(set(env_refs))))


def _reaches_request(key_path: Path) -> bool:
    """Whether a string at ``key_path`` may go into a request (its env values are secrets).

    Endpoints, and every step's and graph's settings except its id and endpoint name: a
    prompt, params, MCP arguments, and checks — an ``llm-rubric``'s rubric is sent to its
    judge, and its reason quotes it.
    """
    if not key_path:
        return False
    if key_path[0] in ("endpoints", "graph", "final", "defaults"):
        return True
    return key_path[0] == "steps" and len(key_path) > 2 and key_path[2] not in ("id", "endpoint")


_UNRESOLVED: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("unresolved", default={})  # noqa: B039


def _read_text(fs_path: FsPath, file: str) -> str:
    from .limits import MAX_PIPELINE_BYTES, read_regular

    if fs_path.is_dir():
        raise ConfigError(
            "is a directory, not a pipeline file", Location(file), hint=f"did you mean {fs_path / 'pipeline.yaml'}?"
        )
    if not fs_path.exists() and not fs_path.is_symlink():
        raise ConfigError("no such file", Location(file))
    # regular files only (a FIFO or /dev/zero is refused before it is opened), within a size budget
    raw = read_regular(fs_path, file, ConfigError, "pipeline", MAX_PIPELINE_BYTES)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", Location(file, line)) from None


def one_or_many(problems: list[RelcheckError]) -> RelcheckError:
    return problems[0] if len(problems) == 1 else MultipleErrors(problems)


# ---------------------------------------------------------------- pydantic errors → ours


def _validate_model(data: dict[str, Any], positions: Positions) -> m.PipelineModel:
    from pydantic import ValidationError

    try:
        return m.PipelineModel.model_validate(data)
    except ValidationError as exc:
        found: list[tuple[Path, str, str]] = []
        for err in exc.errors(include_url=False):
            path, kind = _data_path(data, err["loc"]), err["type"]
            found.append((path, kind, _message(data, path, err)))
        # A union reports one error per member; keep the deepest explanation of a place.
        keep = [
            f
            for f in found
            if not any(o is not f and len(o[0]) > len(f[0]) and o[0][: len(f[0])] == f[0] for o in found)
        ]
        seen: set[tuple[Path, str]] = set()
        problems: list[RelcheckError] = []
        for path, kind, msg in keep:
            if (path, msg) in seen:
                continue
            seen.add((path, msg))
            loc = positions.locate(path, key=kind == "extra_forbidden")
            problems.append(ConfigError(msg, loc))
        raise one_or_many(problems) from None


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path:
    """Map pydantic's error location onto the user's data, dropping union tags."""
    path: list[str | int] = []
    cur = data
    for seg in loc:
        if isinstance(cur, dict) and seg in cur or isinstance(cur, list) and isinstance(seg, int) and seg < len(cur):
            path.append(seg)
            cur = cur[seg]
        elif isinstance(cur, dict) and isinstance(seg, str) and seg not in _UNION_TAGS:
            path.append(seg)  # a missing key: name it
            cur = None
    return tuple(path)


_UNION_TAGS = {
    "mock",
    "python",
    "openai",
    "anthropic",
    "http",
    "mcp",
    "str",
    "list[Message]",
    "list[str]",
    "none",
    "function-after[_checks_are_mappings(), list[dict[str,any]]]",
}


def _message(data: Any, path: Path, err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = _allowed_keys(data, path[:-1])
        hint = ""
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            hint = f" — did you mean '{close[0]}'?"
        elif allowed:
            hint = f" (expected one of: {', '.join(sorted(allowed))})"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"missing required key '{path[-1]}'" if path else "missing required key"
    if kind == "union_tag_invalid":
        return (
            f"unknown endpoint type {err.get('input', {}).get('type')!r}: "
            "expected one of mock, python, openai, anthropic, http, mcp"
        )
    if kind == "union_tag_not_found":
        return "missing required key 'type' (mock, python, openai, anthropic, http or mcp)"
    value = err.get("input")
    if isinstance(value, str):
        value = _UNRESOLVED.get().get(value, value)
    shown = json.dumps(value, default=str)[:60] if not isinstance(value, (dict, list)) else type(value).__name__
    return scrub.scrub(f"{err['msg'].rstrip('.')} (got {shown})".replace("Value error, ", ""))


def _allowed_keys(data: Any, path: Path) -> list[str]:
    """The keys the model accepts at ``path`` (walks the pydantic models alongside data)."""
    model: Any = m.PipelineModel
    cur = data
    for seg in path:
        cur = cur[seg] if isinstance(cur, (dict, list)) else None  # type: ignore[index]
        model = _unwrap(model, seg, cur)
        if model is None:
            return []
    model = _pick(model, cur)
    if isinstance(model, type) and issubclass(model, m.Model):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _unwrap(model: Any, seg: str | int, value: Any) -> Any:
    if isinstance(model, type) and issubclass(model, m.Model) and isinstance(seg, str):
        hints = typing.get_type_hints(model, include_extras=True)
        name = next((n for n, f in model.model_fields.items() if (f.alias or n) == seg), seg)
        return _pick(hints.get(name), value)
    return _pick(model, value, seg)


def _pick(tp: Any, value: Any, seg: Any = None) -> Any:
    """Reduce an annotation to the model class that describes ``value``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _pick(args[0], value, seg)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, m.Model):
                type_field = arg.model_fields.get("type")
                if type_field is None or not isinstance(value, dict):
                    return arg
                if typing.get_args(type_field.annotation) == (value.get("type"),):
                    return arg
        for arg in args:
            if typing.get_origin(arg) in (list, dict):
                return _pick(arg, value, seg)
        return None
    if seg is not None and origin in (list, dict):
        return args[-1]
    return tp


# ---------------------------------------------------------------- steps, templates, refs


def _plan_steps(model: m.PipelineModel, positions: Positions) -> tuple[StepPlan, ...]:
    from jinja2 import TemplateSyntaxError

    if model.graph is not None:
        from .graph import plan_graph_steps

        return plan_graph_steps(model, positions)
    problems: list[RelcheckError] = []
    ids: dict[str, int] = {}
    plans: list[StepPlan] = []

    def template(source: str, path: Path, earlier: set[str]) -> Template:
        try:
            compiled = compile_template(source)
        except TemplateSyntaxError as exc:
            loc = positions.locate(path)
            problems.append(TemplateError(f"template syntax error: {exc.message}", loc))
            return Template(source)
        check_refs(source, path, CONTEXT_NAMES, positions, problems, earlier=earlier)
        return compiled

    for i, step in enumerate(model.steps):
        sp: Path = ("steps", i)
        if step.id in ids:
            problems.append(ConfigError(f"duplicate step id '{step.id}'", positions.locate(sp + ("id",))))
        if step.endpoint is None or step.node is not None or step.output is not None:
            key = "endpoint" if step.endpoint is None else "node" if step.node is not None else "output"
            problems.append(
                ConfigError(
                    "missing required key 'endpoint'"
                    if key == "endpoint"
                    else f"'{key}' is a key of graph steps; this pipeline has no graph: section",
                    positions.locate(sp + ((key,) if key != "endpoint" else ())),
                    hint="a step calls an endpoint, or a pipeline with graph: judges the node a step names",
                )
            )
            continue
        if step.endpoint not in model.endpoints:
            close = difflib.get_close_matches(step.endpoint, list(model.endpoints), n=1)
            problems.append(
                ConfigError(
                    f"unknown endpoint '{step.endpoint}'"
                    + (
                        f" — did you mean '{close[0]}'?"
                        if close
                        else f" (defined: {', '.join(model.endpoints) or 'none'})"
                    ),
                    positions.locate(sp + ("endpoint",)),
                )
            )
        earlier = set(ids)
        messages: tuple[tuple[str, Template], ...]
        if isinstance(step.prompt, str):
            messages = (("user", template(step.prompt, sp + ("prompt",), earlier)),)
        else:
            messages = tuple(
                (msg.role, template(msg.content, sp + ("prompt", j, "content"), earlier))
                for j, msg in enumerate(step.prompt)
            )
        checks = plan_checks(step.checks, sp, earlier | {step.id}, template, positions, problems)
        ids[step.id] = i
        endpoint = model.endpoints.get(step.endpoint)
        retry = effective_retry(model.defaults.retry, step.retry)
        timeout = step.timeout_s or (endpoint.timeout_s if endpoint else None) or model.defaults.timeout_s
        tool = arguments = None
        if step.tool is not None:
            tool = template(step.tool, sp + ("tool",), earlier)
            arguments = compile_nested(step.arguments, sp + ("arguments",), earlier, template)
        problems.extend(_tool_problems(step, endpoint, sp, positions))
        plans.append(
            StepPlan(
                step.id,
                i,
                step.endpoint,
                messages,
                compile_nested(step.params, sp + ("params",), earlier, template),
                step.parse,
                tuple(checks),
                retry,
                timeout,
                tool=tool,
                arguments=arguments,
            )
        )

    for name, ep in model.endpoints.items():
        ep_path: Path = ("endpoints", name)
        for key in ("reply", "url", "json_body", "headers", "query", "tool_calls"):
            if hasattr(ep, key):
                key_name = "json" if key == "json_body" else key
                compile_nested(getattr(ep, key), ep_path + (key_name,), set(ids), template)
    if model.final is not None:
        problems.append(
            ConfigError(
                "'final' checks the final state of a graph; this pipeline has no graph: section",
                positions.locate(("final",), key=True),
            )
        )
    check_gates_and_judges(model, set(ids), positions, problems)
    if problems:
        raise one_or_many(problems)
    return tuple(plans)


def check_gates_and_judges(
    model: m.PipelineModel, ids: set[str], positions: Positions, problems: list[RelcheckError]
) -> None:
    """Gates name known steps; ``llm-rubric`` checks name known endpoints; ``tools_from``
    names an MCP endpoint."""
    for name, ep in model.endpoints.items():
        source = getattr(ep, "tools_from", None)
        if source is not None and getattr(model.endpoints.get(source), "type", None) != "mcp":
            problems.append(
                ConfigError(
                    f"tools_from names '{source}', which is not an mcp endpoint"
                    + (
                        f" (mcp endpoints: {', '.join(n for n, e in model.endpoints.items() if e.type == 'mcp')})"
                        if any(e.type == "mcp" for e in model.endpoints.values())
                        else ""
                    ),
                    positions.locate(("endpoints", name, "tools_from")),
                )
            )
    for step_id in model.gates.steps:
        if step_id not in ids:
            problems.append(
                ConfigError(
                    f"gate names unknown step '{step_id}'", positions.locate(("gates", "steps", step_id), key=True)
                )
            )
    for step_id, trace_step in (model.traces or {}).items():
        if step_id not in ids:
            problems.append(
                ConfigError(f"traces: names unknown step '{step_id}'", positions.locate(("traces", step_id), key=True))
            )
        for where, message in _trace_match_problems(trace_step):
            problems.append(ConfigError(message, positions.locate(("traces", step_id, "match", *where))))
    for i, step in enumerate(model.steps):
        for j, spec in enumerate(step.checks):
            judge = spec.get("endpoint")
            if spec.get("type") == "llm-rubric" and judge is not None and judge not in model.endpoints:
                problems.append(
                    ConfigError(
                        f"llm-rubric names unknown endpoint '{judge}'",
                        positions.locate(("steps", i, "checks", j, "endpoint")),
                    )
                )


def _tool_problems(step: m.Step, endpoint: Any, sp: Path, positions: Positions) -> list[RelcheckError]:
    """A step calls a tool exactly when its endpoint is an MCP server."""
    if endpoint is None:
        return []
    if endpoint.type == "mcp" and step.tool is None:
        return [
            ConfigError(
                f"step '{step.id}' uses the mcp endpoint '{step.endpoint}' but names no tool",
                positions.locate(sp + ("endpoint",)),
                hint="add tool: NAME (and arguments: {...})",
            )
        ]
    if endpoint.type != "mcp" and step.tool is not None:
        return [
            ConfigError(
                f"tool is for steps on an mcp endpoint; '{step.endpoint}' is {endpoint.type}",
                positions.locate(sp + ("tool",)),
            )
        ]
    if step.arguments is not None and step.tool is None:
        return [ConfigError("arguments needs tool", positions.locate(sp + ("arguments",)))]
    if endpoint.type == "mcp" and (step.prompt or step.params):
        key = "prompt" if step.prompt else "params"
        return [ConfigError(f"a tool step sends arguments, not {key}", positions.locate(sp + (key,)))]
    return []


def _trace_match_problems(trace_step: m.TraceStep) -> list[tuple[Path, str]]:
    """Regexes of a ``traces:`` ``match:`` that do not compile."""
    matches = trace_step.match if isinstance(trace_step.match, list) else [trace_step.match]
    problems: list[tuple[Path, str]] = []
    for i, match in enumerate(matches):
        base: Path = (i,) if isinstance(trace_step.match, list) else ()
        fields: list[tuple[Path, Any]] = [((k,), getattr(match, k)) for k in ("name", "step", "kind")]
        fields += [(("attributes", k), v) for k, v in match.attributes.items()]
        for key, pattern in fields:
            if isinstance(pattern, m.RegexPattern):
                try:
                    re.compile(pattern.regex)
                except re.error as exc:
                    problems.append((base + key + ("regex",), f"invalid regex: {exc}"))
    return problems


def compile_nested(value: Any, path: Path, earlier: set[str], template: Any) -> Any:
    if isinstance(value, str):
        return template(value, path, earlier)
    if isinstance(value, dict):
        return {k: compile_nested(v, path + (k,), earlier, template) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_nested(v, path + (i,), earlier, template) for i, v in enumerate(value)]
    return value


def plan_checks(
    specs: list[dict[str, Any]],
    base: Path,
    earlier: set[str],
    template: Any,
    positions: Positions,
    problems: list[RelcheckError],
) -> tuple[CheckPlan, ...]:
    """Validate and compile the checks of one step (``base`` is the step's path in the file).

    Problems are appended to ``problems``; the templated keys of each check are compiled
    with ``template(source, path, earlier)``.
    """
    from ..checks import validate_spec

    checks = []
    for j, spec in enumerate(specs):
        cp = base + ("checks", j)
        for msg in validate_spec(spec):
            problems.append(ConfigError(msg, positions.locate(cp)))
        keys = [key for key in TEMPLATED_CHECK_KEYS if key in spec]
        templated = {key: compile_nested(spec[key], cp + (key,), earlier, template) for key in keys}
        checks.append(CheckPlan(spec, templated, positions.locate(cp)))
    return tuple(checks)


def check_refs(
    source: str,
    path: Path,
    allowed: frozenset[str],
    positions: Positions,
    problems: list[RelcheckError],
    *,
    earlier: set[str] | None = None,
    where: str = "the template context",
) -> None:
    """Report each name ``source`` uses that is not in ``allowed`` (and, given ``earlier``,
    each ``steps.X`` that is not an earlier step and each unknown ``case.X``)."""
    from jinja2 import TemplateSyntaxError

    try:
        refs = list(references(source))
    except TemplateSyntaxError:
        return
    for ref in refs:
        if len(ref) == 1 and ref[0] not in allowed:
            problems.append(
                TemplateError(
                    f"template names '{ref[0]}', which is not in {where}",
                    positions.locate(path),
                    hint="available: " + ", ".join(sorted(allowed)),
                )
            )
        elif earlier is None:
            continue
        elif len(ref) == 2 and ref[0] == "steps" and ref[1] not in earlier:
            problems.append(
                TemplateError(
                    f"template names steps.{ref[1]}, which is not an earlier step",
                    positions.locate(path),
                    hint=("earlier steps: " + ", ".join(sorted(earlier)))
                    if earlier
                    else "the first step has no earlier steps",
                )
            )
        elif len(ref) == 2 and ref[0] == "case" and ref[1] not in ("id", "tags"):
            problems.append(
                TemplateError(f"template names case.{ref[1]}; case has id and tags", positions.locate(path))
            )


def effective_retry(default: m.RetryPolicy, step: m.RetryPolicy | None) -> Retry:
    step = step or m.RetryPolicy()
    max_attempts = step.max_attempts or default.max_attempts or 1
    on = step.on if step.on is not None else default.on if default.on is not None else ["error", "fail"]
    backoff = step.backoff or default.backoff or m.Backoff()
    return Retry(max_attempts, frozenset(on), backoff)


__all__ = ["Pipeline", "StepPlan", "CheckPlan", "Retry", "load_pipeline", "compile_value"]
