"""Pipeline and eval set models and loaders."""

from .evalset import Case, EvalSet, evalset_hash, load_evalsets
from .models import json_schema
from .pipeline import CheckPlan, Pipeline, Retry, StepPlan, load_pipeline

__all__ = [
    "Case",
    "CheckPlan",
    "EvalSet",
    "Pipeline",
    "Retry",
    "StepPlan",
    "evalset_hash",
    "json_schema",
    "load_evalsets",
    "load_pipeline",
]
