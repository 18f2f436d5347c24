"""The ``graph:`` and ``final:`` sections of a pipeline (SPEC §11, issue #13/#16).

A graph pipeline runs the user's own LangGraph graph and judges the nodes its ``steps``
name; these are the models of the two top-level sections it adds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GraphConfig(_Model):
    """``graph:``: which graph to run, and the input each unit starts it with."""

    type: Literal["langgraph"]
    #: ``package.module:attr``: a compiled graph, a ``StateGraph``, or a callable returning either
    target: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
    #: the graph's input: a mapping whose string values are templates over ``vars`` and ``expect``
    input: dict[str, Any] = Field(default_factory=dict)
    recursion_limit: Annotated[int, Field(ge=1, le=10_000)] = 25


class FinalConfig(_Model):
    """``final:``: checks on the graph's final state, part of end to end."""

    output: str | None = None  # default: the whole final state, as JSON
    checks: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_are_mappings(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ValueError(f"check {i} must be a mapping like {{type: equals, value: …}}")
        return value
