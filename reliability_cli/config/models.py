"""The pipeline format (SPEC §2) as pydantic models: one source for validation and schema.

Every model forbids unknown keys (a typo must never be silently ignored) and is frozen.
Endpoint configs are a union discriminated by ``type``; checks stay mappings here and are
validated by the check registry, which owns each check type's keys (and gives the JSON
Schema its ``Check`` union, keyed on ``type``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .graph_models import FinalConfig, GraphConfig

StepId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", min_length=1, max_length=64)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Rate = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: Backoff bounds: a retry never waits more than an hour, so a typo (``1e308``) is refused.
MAX_BACKOFF_S = 3600.0
BackoffSeconds = Annotated[float, Field(ge=0, le=MAX_BACKOFF_S, allow_inf_nan=False)]


class Backoff(Model):
    initial_s: BackoffSeconds = 0.5
    factor: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 2.0
    max_s: BackoffSeconds = 8.0
    jitter: bool = True


class RetryPolicy(Model):
    """A step's retry policy; keys left out are taken from ``defaults.retry``."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None
    on: list[Literal["error", "fail"]] | None = None
    backoff: Backoff | None = None


class Price(Model):
    input: NonNegative = 0.0
    output: NonNegative = 0.0


class EndpointBase(Model):
    timeout_s: Positive | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=4096)] | None = None
    rate_limit_rpm: Positive | None = None
    rate_limit_tpm: Positive | None = None  # HTTP endpoints: tokens per minute, admitted on an estimate
    price: Price | None = None
    redact: list[str] = Field(default_factory=list)


class MockEndpoint(EndpointBase):
    type: Literal["mock"]
    fail_rate: Rate = 0.0
    failure: Literal["wrong", "error", "timeout", "malformed"] = "wrong"
    latency_ms: NonNegative = 0.0
    reply: Any = "ok"
    wrong_reply: str = "<relcheck-mock: wrong answer>"
    #: tool calls to answer with: a list of ``{name, arguments}`` (templated) or one template
    #: expression giving such a list; a ``wrong`` failure answers with none
    tool_calls: Any = None


class PythonEndpoint(EndpointBase):
    type: Literal["python"]
    callable: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


#: 10 MiB: the largest response body (after decoding) read from an HTTP endpoint by default.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class HttpEndpointBase(EndpointBase):
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    api_key_env: str | None = None
    max_response_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=1 << 31,
            description="Largest response body read, after decoding (bytes); "
            "a larger one ends the attempt as error too_large",
        ),
    ] = DEFAULT_MAX_RESPONSE_BYTES


class ModelEndpointBase(HttpEndpointBase):
    tools_from: str | None = None  # an ``mcp`` endpoint whose tools are offered to the model


class OpenAIEndpoint(ModelEndpointBase):
    type: Literal["openai"]
    base_url: str = "https://api.openai.com/v1"
    model: str
    path: str = "/chat/completions"
    params: dict[str, Any] = Field(default_factory=dict)


class AnthropicEndpoint(ModelEndpointBase):
    type: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    model: str
    anthropic_version: str = "2023-06-01"
    max_tokens: Annotated[int, Field(ge=1)] = 1024
    params: dict[str, Any] = Field(default_factory=dict)


class HttpEndpoint(HttpEndpointBase):
    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    json_body: Any = Field(default=None, alias="json")
    output_path: str | None = None


class McpEndpoint(EndpointBase):
    """An MCP server: started as a subprocess (``command``, stdio) or reached at ``url``
    (streamable HTTP). Its tools are called by steps that name a ``tool``."""

    type: Literal["mcp"]
    command: Annotated[list[str], Field(min_length=1)] | None = None
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_transport(self) -> McpEndpoint:
        if (self.command is None) == (self.url is None):
            raise ValueError("an mcp endpoint needs exactly one of command (stdio) or url (streamable HTTP)")
        if self.command is not None and self.headers:
            raise ValueError("headers apply to url (streamable HTTP) only; a command gets env")
        if self.url is not None and self.env:
            raise ValueError("env applies to command (stdio) only; a url gets headers")
        return self


EndpointConfig = Annotated[
    Union[MockEndpoint, PythonEndpoint, OpenAIEndpoint, AnthropicEndpoint, HttpEndpoint, McpEndpoint],
    Field(discriminator="type"),
]


class Message(Model):
    role: Literal["system", "user", "assistant"]
    content: str


class Step(Model):
    id: StepId
    endpoint: str | None = None  # required unless the pipeline has a ``graph:``
    node: str | None = None  # graph pipelines: the node judged (default: the step id)
    output: str | None = None  # graph pipelines: what checks see (default: the update as JSON)
    description: str | None = None
    prompt: Union[str, list[Message]] = ""
    params: dict[str, Any] = Field(default_factory=dict)
    parse: Literal["text", "json"] = "text"
    checks: list[dict[str, Any]] = Field(default_factory=list)
    retry: RetryPolicy | None = None
    timeout_s: Positive | None = None
    tool: str | None = None  # MCP: the tool to call (templated)
    arguments: Any = None  # MCP: the tool's arguments (templated, value by value)

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_are_mappings(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ValueError(f"check {i} must be a mapping like {{type: equals, value: …}}")
        return value


class Defaults(Model):
    retry: RetryPolicy = RetryPolicy()
    timeout_s: Positive = 30.0


class MinGate(Model):
    min: Rate


class BaselineGate(Model):
    path: str
    max_drop: Rate = 0.0
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05


class Gates(Model):
    end_to_end: MinGate | None = None
    steps: dict[str, MinGate] = Field(default_factory=dict)
    mode: Literal["point", "lower-bound"] = "point"
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    max_error_rate: Rate = 0.10
    baseline: BaselineGate | None = None


class RegexPattern(Model):
    regex: Annotated[str, Field(min_length=1)]


TracePattern = Union[str, int, float, bool, RegexPattern]  # exact (compared as text), or a regex (search)


class TraceMatch(Model):
    """What a trace record must look like to stand for a step (``relcheck traces``): every
    key given must match. ``step`` is the step relcheck names the record by default."""

    name: TracePattern | None = None
    step: TracePattern | None = None
    kind: TracePattern | None = None
    attributes: dict[str, TracePattern] = Field(default_factory=dict)


class TraceStep(Model):
    match: Union[TraceMatch, Annotated[list[TraceMatch], Field(min_length=1)]]


class PipelineModel(Model):
    version: Literal[1]
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    evalset: Union[str, list[str], None] = None
    seed: int = 0
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    defaults: Defaults = Defaults()
    graph: GraphConfig | None = None
    steps: Annotated[list[Step], Field(min_length=1)]
    final: FinalConfig | None = None
    gates: Gates = Gates()
    traces: dict[str, TraceStep] | None = None  # step id → how production trace records map to it


def json_schema() -> dict[str, Any]:
    """JSON Schema of the pipeline format, for editors (``relcheck schema``)."""
    from ..checks.registry import check_json_schema

    schema = PipelineModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "relcheck pipeline"
    schema["$defs"]["Check"] = check_json_schema()
    for name in ("Step", "FinalConfig"):  # checks are validated by the registry, not pydantic
        schema["$defs"][name]["properties"]["checks"]["items"] = {"$ref": "#/$defs/Check"}
    return schema
