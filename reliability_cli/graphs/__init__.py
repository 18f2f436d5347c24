"""Graph pipelines: run the user's own agent graph and judge the nodes its steps name.

Only LangGraph (``graph: {type: langgraph}``) for now: :mod:`.langgraph` loads the target,
checks the judged nodes exist, and runs one unit with retries from LangGraph's checkpoints.
It is imported only when a pipeline has a ``graph:`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Pipeline

INSTALL = "pip install 'relcheck[langgraph]'"


def check_graph(pipeline: Pipeline) -> Any:
    """Import the pipeline's graph target and check every judged node exists in it.

    Returns the loaded graph (see :func:`.langgraph.load_graph`).

    Raises:
        UsageError: langgraph is not installed (exit 2, with the install command).
        ConfigError: the target does not import (naming the file and line), is not a graph,
            or a step names a node the graph does not have (with a did-you-mean).
    """
    from .langgraph import check_nodes, load_graph

    loaded = load_graph(pipeline)
    check_nodes(pipeline, loaded)
    return loaded


__all__ = ["INSTALL", "check_graph"]
