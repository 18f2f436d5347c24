"""relcheck: the reliability harness for multi-step LLM pipelines.

Python users can do what the CLI does::

    from reliability_cli import load_pipeline, run_eval, RunOptions
    outcome = run_eval("evalsets/six-step-agent/pipeline.yaml", RunOptions(retries=1))
    outcome.results.end_to_end.rate
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ConfigError,
    EvalSetError,
    Location,
    RelcheckError,
    ResultsError,
    RunAborted,
    TemplateError,
    UsageError,
)

__all__ = [
    "Case",
    "ConfigError",
    "EvalSet",
    "EvalSetError",
    "Location",
    "Pipeline",
    "RelcheckError",
    "Results",
    "ResultsError",
    "RunAborted",
    "RunOptions",
    "RunOutcome",
    "TemplateError",
    "UsageError",
    "__version__",
    "load_evalsets",
    "load_pipeline",
    "load_results",
    "run_eval",
]


if TYPE_CHECKING:
    from .config import Case, EvalSet, Pipeline, load_evalsets, load_pipeline
    from .results.schema import Results
    from .results.schema import load as load_results
    from .runner import RunOptions, RunOutcome, run_eval


def __getattr__(name: str) -> Any:
    # Config (pydantic models), the runner and reports are imported on first use:
    # `import reliability_cli` stays light, and `relcheck --help` builds no model.
    if name in ("Case", "EvalSet", "Pipeline", "load_evalsets", "load_pipeline"):
        from . import config

        return getattr(config, name)
    if name in ("RunOptions", "RunOutcome", "run_eval"):
        from . import runner

        return getattr(runner, name)
    if name in ("load_results", "Results"):
        from .results import schema

        return schema.load if name == "load_results" else schema.Results
    raise AttributeError(name)
