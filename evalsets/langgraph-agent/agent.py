"""A support agent as a LangGraph graph: six nodes, a conditional branch and a tool loop.

    classify ─┬─ billing ──→ account_lookup ─┐
              └─ tech/other → triage ────────┴→ agent ⇄ tools → draft → END

Every model call goes to :class:`fake_model.FakeModel`, which answers wrong 3% of the time;
``tools`` is a real :class:`langgraph.prebuilt.ToolNode` over a deterministic tool. A unit
judges five model calls (classify, one branch, the agent twice, draft): 0.97^5 = 85.9% end
to end, and with one retry per node (1 - 0.03^2)^5 = 99.6%.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, TypedDict

from fake_model import FakeModel
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

MODEL = FakeModel(fail_rate=0.03)
KB = {"billing": "refunds are issued within 5 days", "tech": "a restart of the router fixes it",
      "other": "our team will call you back"}


class State(TypedDict, total=False):
    ticket: str
    customer: str
    account_id: str
    product: str
    category: str
    account: str
    component: str
    messages: Annotated[list[AnyMessage], add_messages]
    reply: str


def _category(ticket: str) -> str:
    text = ticket.lower()
    if "invoice" in text or "charge" in text or "refund" in text:
        return "billing"
    if "error" in text or "router" in text or "crash" in text:
        return "tech"
    return "other"


@tool
def search_kb(topic: str) -> str:
    """Search the knowledge base for a topic."""
    return KB.get(topic, "no article")


def classify(state: State, config: RunnableConfig) -> dict[str, Any]:
    return {"category": MODEL.answer(config, "classify", _category(state["ticket"]))}


def route(state: State) -> str:
    return "account_lookup" if state["category"] == "billing" else "triage"


def account_lookup(state: State, config: RunnableConfig) -> dict[str, Any]:
    return {"account": MODEL.answer(config, "account_lookup", state["account_id"])}


def triage(state: State, config: RunnableConfig) -> dict[str, Any]:
    return {"component": MODEL.answer(config, "triage", state["product"])}


def agent(state: State, config: RunnableConfig) -> dict[str, Any]:
    messages = state.get("messages") or []
    visit = sum(1 for m in messages if isinstance(m, AIMessage))
    tool_results = [m for m in messages if getattr(m, "type", "") == "tool"]
    if not tool_results:  # first visit: look the topic up
        call_id = "call_" + hashlib.sha256(state["ticket"].encode()).hexdigest()[:8]
        right = AIMessage("", tool_calls=[{"name": "search_kb", "args": {"topic": state["category"]},
                                           "id": call_id}])
    else:  # second visit: answer from the tool's result
        right = AIMessage(f"Answer: {tool_results[-1].content}.")
    said = MODEL.answer(config, "agent", right, visit)
    return {"messages": [said if isinstance(said, AIMessage) else AIMessage(said)]}


def draft(state: State, config: RunnableConfig) -> dict[str, Any]:
    answer = state["messages"][-1].content
    right = f"Dear {state['customer']}, {answer} Kind regards, Support"
    return {"reply": MODEL.answer(config, "draft", right)}


def build() -> Any:
    """The graph, uncompiled: relcheck compiles it with an in-memory checkpointer."""
    graph = StateGraph(State)
    graph.add_node("classify", classify)
    graph.add_node("account_lookup", account_lookup)
    graph.add_node("triage", triage)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([search_kb]))
    graph.add_node("draft", draft)
    graph.add_edge(START, "classify")
    graph.add_conditional_edges("classify", route, ["account_lookup", "triage"])
    graph.add_edge("account_lookup", "agent")
    graph.add_edge("triage", "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "draft"})
    graph.add_edge("tools", "agent")
    graph.add_edge("draft", END)
    return graph
