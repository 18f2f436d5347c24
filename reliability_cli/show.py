"""``relcheck show``: one run's units read whole, from the run directory.

:func:`load_units` joins the journal (``attempts.jsonl``: outcomes, error kinds, latency,
tokens, cost) with the detail sidecar (``requests.jsonl``: vars and expect, the rendered
request, the full output, tool calls and every check's verdict) for the units a
:class:`Selection` picks. It reads both files twice, streaming: the first pass keeps one small
record per unit to select on, the second keeps the attempts of the selected units only. It
works on an interrupted run (no ``results.json``; units without a ``unit_done`` line are
``incomplete``) and on a run made before the sidecar existed (the request and checks are then
absent and the output is the journal's 2 KiB excerpt).

:func:`render` prints them for a terminal: wrapped at the console's width, never cut, with
control characters of model output made visible so they cannot drive the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Location, ResultsError, UsageError
from .journal import is_stored
from .safetext import terminal

if TYPE_CHECKING:
    from .results.schema import Results

JOURNAL = "attempts.jsonl"
DETAILS = "requests.jsonl"
OUTCOMES = ("pass", "fail", "error", "incomplete", "all", "failing")


@dataclass(frozen=True)
class Selection:
    """Which units to show. ``outcome`` ``failing`` (the default) is ``fail`` or ``error``.

    With ``step``, only units that reached that step, and ``outcome``/``error_kind`` are that
    step's final ones; without it, the unit's.
    """

    case: str | None = None
    step: str | None = None
    outcome: str = "failing"
    error_kind: str | None = None
    tag: str | None = None
    trial: int | None = None
    limit: int | None = None


@dataclass
class Shown:
    units: list[dict[str, Any]]
    matched: int  # before --limit
    run_dir: Path
    complete: bool  # the run has a results.json
    steps: list[str] = field(default_factory=list)


def open_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete JSON line of ``path`` in its stored form (plain, or gzipped once the run
    finished: :func:`~.journal.open_stored`); a torn last line is skipped, and so is any line
    that is not a JSON object (``show`` reads what it can of a damaged run)."""
    from .journal import open_stored

    try:
        fh = open_stored(path)
    except FileNotFoundError:
        return
    with fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if isinstance(obj, dict):
                yield obj


def _key(rec: Mapping[str, Any]) -> tuple[str, int]:
    return str(rec.get("case")), int(rec.get("trial") or 1)


def load_units(run_dir: str | Path, sel: Selection, results: Results | None = None) -> Shown:
    """The units of ``run_dir`` that ``sel`` picks, each with its steps and attempts in full.

    Args:
        run_dir: The run directory (its journal and ``details.jsonl``).
        sel: Which units, and how many.
        results: The run's results when the caller holds them (the HTML viewer); else its
            ``results.json`` is read, when there is a readable one, for the step order and the
            units' order.

    Returns:
        The chosen units, how many matched, and the run's step ids.

    Raises:
        ResultsError: ``run_dir`` holds no journal.
        UsageError: an unknown ``--outcome`` or ``--step``.
    """
    root = Path(run_dir)
    journal = root / JOURNAL
    if not is_stored(journal):
        raise ResultsError(f"not a run directory: no {JOURNAL}", Location(str(root)))
    if sel.outcome not in OUTCOMES:
        raise UsageError(f"--outcome {sel.outcome}: expected one of {', '.join(OUTCOMES)}")
    complete = results is not None or (root / "results.json").exists()
    if results is None and complete:
        results = _read_results(root)
    steps = results.step_ids if results is not None else []
    if sel.step is not None and steps and sel.step not in steps:
        raise UsageError(f"--step {sel.step}: the run has no such step", hint="steps: " + ", ".join(steps))

    # pass 1: one small record per unit
    done: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[tuple[str, int], None] = {}  # units with attempts, in order of appearance
    for rec in open_lines(journal):
        unit = rec.get("unit_done")
        if unit is not None:
            done[_key(unit)] = unit
            seen.setdefault(_key(unit), None)
        elif "step" in rec and "case" in rec:
            seen.setdefault(_key(rec), None)
    tags: dict[tuple[str, int], list[str]] = {}
    if sel.tag is not None:
        for rec in open_lines(root / DETAILS):
            if rec.get("unit"):
                tags[_key(rec)] = list(rec.get("tags") or ())
    order = _unit_order(results) if results is not None else {}
    keys = (
        sorted(seen, key=lambda k: (order.get(k[0], len(order)), k[0] if not order else "", k[1]))
        if order
        else list(seen)
    )
    chosen = [k for k in keys if _matches(k, done.get(k), sel, tags)]
    matched = len(chosen)
    if sel.limit is not None:
        chosen = chosen[: sel.limit]
    wanted = set(chosen)

    # pass 2: the attempts and details of the chosen units
    attempts: dict[tuple[str, int], dict[tuple[str, str, int], dict[str, Any]]] = {k: {} for k in chosen}
    info: dict[tuple[str, int], dict[str, Any]] = {}
    for rec in open_lines(journal):
        if "unit_done" in rec or "step" not in rec:
            continue
        k = _key(rec)
        if k in wanted and rec.get("phase", "chained") != "judge":
            slot = (str(rec.get("phase", "chained")), str(rec["step"]), int(rec.get("attempt") or 1))
            attempts[k][slot] = dict(rec)  # a resumed unit's rerun replaces the discarded lines
    for rec in open_lines(root / DETAILS):
        k = _key(rec)
        if k not in wanted:
            continue
        if rec.get("unit"):
            info[k] = rec
            continue
        slot = (str(rec.get("phase", "chained")), str(rec.get("step")), int(rec.get("attempt") or 1))
        att = attempts[k].get(slot)
        if att is not None:
            for name in ("endpoint", "request", "sent", "output", "tool_calls", "checks", "judge"):
                if name in rec:
                    att[name] = rec[name]
            att["detailed"] = True
    units = [_unit(k, done.get(k), info.get(k), attempts[k], steps) for k in chosen]
    return Shown(units, matched, root, complete, steps)


def _read_results(root: Path) -> Results | None:
    """The run's ``results.json``, or None when it cannot be read (a hand-edited or partial file:
    ``show`` still lists the journal's units, in journal order)."""
    from .results.schema import load

    try:
        return load(root / "results.json")
    except ResultsError:
        return None


def _unit_order(results: Results) -> dict[str, int]:
    """Case id → its position among the results' units (the eval set's order)."""
    order: dict[str, int] = {}
    for u in results.units:
        order.setdefault(u.case, len(order))
    return order


def _matches(
    key: tuple[str, int], unit: Mapping[str, Any] | None, sel: Selection, tags: Mapping[tuple[str, int], list[str]]
) -> bool:
    case, trial = key
    if sel.case is not None and case != sel.case:
        return False
    if sel.trial is not None and trial != sel.trial:
        return False
    if sel.tag is not None and sel.tag not in tags.get(key, ()):
        return False
    if unit is None:
        outcome, kind = "incomplete", None
        if sel.step is not None:
            return sel.outcome in ("incomplete", "all") and sel.error_kind is None
    elif sel.step is not None:
        row = next((s for s in unit.get("steps", ()) if s.get("step") == sel.step), None)
        if row is None or row.get("final") == "skipped":
            return False
        outcome, kind = str(row.get("final")), row.get("error_kind")
    else:
        outcome, kind = str(unit.get("outcome")), unit.get("error_kind")
    if sel.error_kind is not None and kind != sel.error_kind:
        return False
    if sel.outcome == "all" or (
        sel.case is not None and sel.outcome == "failing" and sel.step is None and sel.error_kind is None
    ):
        return True  # --case alone shows that case whatever its outcome
    if sel.outcome == "failing":
        return outcome in ("fail", "error")
    return outcome == sel.outcome


def _unit(
    key: tuple[str, int],
    unit: Mapping[str, Any] | None,
    info: Mapping[str, Any] | None,
    attempts: Mapping[tuple[str, str, int], dict[str, Any]],
    steps: Sequence[str],
) -> dict[str, Any]:
    case, trial = key
    out: dict[str, Any] = {
        "case": case,
        "trial": trial,
        "outcome": str(unit.get("outcome")) if unit else "incomplete",
        "passed": bool(unit.get("passed")) if unit else False,
        "failed_step": unit.get("failed_step") if unit else None,
        "error_kind": unit.get("error_kind") if unit else None,
        "vars": info.get("vars") if info else None,
        "expect": info.get("expect") if info else None,
        "tags": list(info.get("tags") or ()) if info else [],
    }
    finals = {
        (p, s["step"]): s
        for p, rows in (
            ("chained", unit.get("steps", ()) if unit else ()),
            ("isolated", unit.get("isolated", ()) if unit else ()),
        )
        for s in rows
    }
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (phase, step, _), att in sorted(attempts.items(), key=lambda kv: (kv[0][0] != "chained", kv[0][2])):
        groups.setdefault((phase, step), []).append(att)
    rank = {s: i for i, s in enumerate(steps)}
    step_rows = []
    for (phase, step), atts in sorted(
        groups.items(), key=lambda kv: (kv[0][0] != "chained", rank.get(kv[0][1], len(rank)))
    ):
        final = finals.get((phase, step), {})
        step_rows.append(
            {
                "step": step,
                "phase": phase,
                "final": final.get("final", atts[-1].get("outcome")),
                "attempts": [_attempt(a) for a in sorted(atts, key=lambda a: a.get("attempt") or 1)],
            }
        )
    out["steps"] = step_rows
    return out


def _attempt(rec: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "attempt",
        "outcome",
        "error_kind",
        "reason",
        "latency_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "throttled",
        "cached",
        "endpoint",
        "request",
        "sent",
        "output",
        "tool_calls",
        "checks",
        "judge",
    )
    out = {k: rec.get(k) for k in keys}
    out["cached"] = bool(rec.get("cached"))
    out["full_output"] = bool(rec.get("detailed"))  # else ``output`` is the journal's excerpt
    return out


def to_json(shown: Shown) -> dict[str, Any]:
    return {
        "schema": "relcheck.show/v1",
        "run_dir": str(shown.run_dir),
        "complete": shown.complete,
        "matched": shown.matched,
        "units": shown.units,
    }


# ---------------------------------------------------------------------- terminal


def printable(text: Any) -> str:
    """``text`` with every control character but newline and tab shown as an escape."""
    return terminal(str(text))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=None, default=str)


def render(shown: Shown, console: Any) -> None:
    """Print ``shown`` on a rich ``console``: every line folds at its width, nothing is cut."""
    from rich.text import Text

    def line(text: str, indent: int = 0, style: str | None = None) -> None:
        width = max(20, console.width - indent)
        for part in printable(text).split("\n"):
            for piece in Text(part, style=style or "").wrap(console, width, overflow="fold"):
                piece.rstrip()
                console.print(Text(" " * indent) + piece, soft_wrap=True)

    if not shown.units:
        line("no unit matches" + ("" if shown.complete else " (the run has no results.json: interrupted?)"))
        return
    for n, unit in enumerate(shown.units):
        if n:
            line("")
        where = f" at step {unit['failed_step']}" if unit.get("failed_step") else ""
        kind = f" ({unit['error_kind']})" if unit.get("error_kind") else ""
        line(f"━━ {unit['case']} / trial {unit['trial']} · {unit['outcome'].upper()}{where}{kind}", style="bold")
        if unit.get("tags"):
            line("tags:   " + ", ".join(map(str, unit["tags"])), 2)
        for name in ("vars", "expect"):
            if unit.get(name):
                line(f"{name}:", 2)
                line(_json(unit[name]), 4)
        for step in unit["steps"]:
            phase = "" if step["phase"] == "chained" else f" ({step['phase']})"
            count = len(step["attempts"])
            line(
                f"step {step['step']}{phase} · {step['final']} · {count} attempt{'s' if count != 1 else ''}",
                2,
                style="bold",
            )
            for att in step["attempts"]:
                _render_attempt(att, line)
    if shown.matched > len(shown.units):
        line("")
        line(f"… {shown.matched - len(shown.units)} more unit(s) match; raise --limit to see them")


def _call_facts(title: str, call: Mapping[str, Any]) -> list[str]:
    """``title``, outcome/kind, cached or latency, tokens and cost: the head line of an
    attempt or of a judge call."""
    facts = [title, str(call.get("outcome"))]
    if call.get("error_kind"):
        facts[-1] += f"/{call['error_kind']}"
    if call.get("cached"):
        facts.append("cached")
    elif call.get("latency_ms") is not None:
        facts.append(f"{call['latency_ms']:g} ms")
    if call.get("tokens_in") is not None or call.get("tokens_out") is not None:
        facts.append(f"tokens {call.get('tokens_in') or 0} in / {call.get('tokens_out') or 0} out")
    if call.get("cost_usd") is not None:
        facts.append(f"${call['cost_usd']:.6f}")
    return facts


def _render_attempt(att: Mapping[str, Any], line: Any) -> None:
    facts = _call_facts(f"attempt {att['attempt']}", att)
    if att.get("throttled"):
        facts.append(f"throttled {att['throttled']}×")
    line(" · ".join(facts), 4, style="bold")
    sent, request = att.get("sent"), att.get("request")
    if sent:
        line(f"request: {sent.get('method')} {sent.get('url')}", 6)
    elif request is not None:
        line("request:" + (f" (endpoint {att['endpoint']})" if att.get("endpoint") else ""), 6)
    body = sent.get("body") if sent else None
    chat = not sent or (isinstance(body, dict) and "messages" in body)  # else the body is what was sent
    if request is not None and chat:
        for msg in request.get("messages") or ():
            line(f"[{msg.get('role')}]", 8, style="dim")
            line(str(msg.get("content")), 10)
        if request.get("params"):
            line("params: " + _json(request["params"]), 8)
    elif body is not None:
        line("body: " + _json(body), 8)
    if att.get("output") is not None:
        line(
            "output:"
            + (
                ""
                if att.get("full_output")
                else " (the journal's 2 KiB excerpt: requests.jsonl holds no detail of this attempt)"
            ),
            6,
        )
        line(str(att["output"]) if att["output"] != "" else '""', 8)
    for call in att.get("tool_calls") or ():
        line(f"tool call: {call.get('name')}({_json(call.get('arguments'))})", 6)
    checks = att.get("checks")
    if checks:
        line("checks:", 6)
        for c in checks:
            mark = "✓ pass" if c.get("passed") else "✗ fail"
            line(f"{mark} {c.get('type')}" + (f": {c['reason']}" if c.get("reason") else ""), 8)
    for call in att.get("judge") or ():
        _render_judge(call, line)
    if att.get("outcome") != "pass" and att.get("reason"):
        label = "error" if att.get("outcome") == "error" else "reason"
        line(f"{label}: {att['reason']}", 6)


def _render_judge(call: Mapping[str, Any], line: Any) -> None:
    """One ``llm-rubric`` judge call: its request as rendered (keys were never stored), its reply."""
    line(" · ".join(_call_facts(f"judge call (endpoint {call.get('endpoint')})", call)), 6)
    sent = call.get("sent")
    if isinstance(sent, Mapping) and sent.get("url"):
        line(f"request: {sent.get('method')} {sent.get('url')}", 8)
    for msg in (call.get("request") or {}).get("messages") or ():
        line(f"[{msg.get('role')}]", 8, style="dim")
        line(str(msg.get("content")), 10)
    if call.get("output") is not None:
        line("reply:", 8)
        line(str(call["output"]) if call["output"] != "" else '""', 10)
    if call.get("reason"):
        line(f"error: {call['reason']}", 8)
