"""JUnit XML (SPEC §8): what CI systems (GitHub, GitLab, Jenkins, Buildkite) read.

One ``<testsuite>`` per pipeline; one ``<testcase>`` per unit named ``<case id>[trial]``
and one per gate, named ``gate <name>``. The document fails exactly when the run does:
gates are the only test cases that can fail (``<failure>``); a reliability run expects some
units to fail, so a failing unit is ``<skipped>`` with the step and the reason as its
message (CI reporters list skipped cases with their message and keep the build green); a
run without a trustworthy verdict (verdict ``error``) adds one ``<error>`` case, ``run``.
The layout follows the Jenkins/Ant ``junit-10.xsd`` schema: ``testsuites > testsuite >
(properties?, testcase*)``, a test case holding at most one of ``failure``/``error``/``skipped``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

# XML 1.0 forbids most control characters even when escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("�", "" if text is None else str(text))


def render_junit(results: Mapping[str, Any]) -> str:
    """The run as JUnit XML text."""
    run = results["run"]
    pipeline = _clean(run.get("pipeline") or "pipeline")
    reasons = _reasons(results)
    units = results.get("units") or []
    gates = results.get("gates") or []
    failed_units = [u for u in units if not u["passed"]]
    failures = sum(1 for g in gates if not g["passed"])
    errors = 1 if results.get("verdict") == "error" else 0
    tests = len(units) + len(gates) + errors
    duration = f"{float(run.get('duration_s') or 0.0):.3f}"
    root = ET.Element(
        "testsuites",
        {
            "name": "relcheck",
            "tests": str(tests),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": str(len(failed_units)),
            "time": duration,
        },
    )
    attrs = {
        "name": pipeline,
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(len(failed_units)),
        "time": duration,
    }
    if run.get("started_at"):
        attrs["timestamp"] = _clean(str(run["started_at"]).replace("+00:00", ""))
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    e2e = results.get("end_to_end") or {}
    for name, value in (
        ("verdict", results.get("verdict")),
        ("exit_code", results.get("exit_code")),
        ("end_to_end_rate", e2e.get("rate")),
        ("run_id", run.get("id")),
        ("seed", run.get("seed")),
        ("trials", run.get("trials")),
    ):
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    classname = f"relcheck.{pipeline}"
    for u in units:
        case = ET.SubElement(
            suite, "testcase", {"classname": classname, "name": _clean(f"{u['case']}[{u['trial']}]"), "time": "0"}
        )
        if u["passed"]:
            continue
        step = u.get("failed_step") or "?"
        info = reasons.get((u["case"], u["trial"], step), {})
        reason = info.get("reason") or (u.get("error_kind") or u.get("outcome") or "failed")
        kind = u.get("error_kind")
        what = "errored" if u.get("outcome") == "error" else "failed"
        message = f"unit {what} at step {step}: {reason}"
        el = ET.SubElement(case, "skipped", {"message": _clean(message[:500])})
        body = [
            message,
            f"outcome: {u.get('outcome')}" + (f" ({kind})" if kind else ""),
            f"attempts in this unit: {u.get('attempts')}",
        ]
        if info.get("output"):
            body.append(f"output: {info['output']}")
        el.text = _clean("\n".join(body))
    for g in gates:
        case = ET.SubElement(
            suite, "testcase", {"classname": f"{classname}.gates", "name": _clean(f"gate {g['name']}"), "time": "0"}
        )
        if not g["passed"]:
            el = ET.SubElement(case, "failure", {"message": _clean(g["detail"]), "type": "gate"})
            el.text = _clean(f"{g['name']}: {g['detail']}")
    if errors:
        case = ET.SubElement(suite, "testcase", {"classname": f"{classname}.gates", "name": "run", "time": "0"})
        stop = run.get("stop_reason") or "no trustworthy verdict (infrastructure errors)"
        el = ET.SubElement(case, "error", {"message": _clean(f"no verdict: {stop}"), "type": "verdict"})
        el.text = _clean(f"verdict error (exit {results.get('exit_code')}): {stop}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _reasons(results: Mapping[str, Any]) -> dict[tuple[str, int, str], Mapping[str, Any]]:
    """(case, trial, step) → the failure record kept in the step row (bounded per step)."""
    out: dict[tuple[str, int, str], Mapping[str, Any]] = {}
    for s in results.get("steps") or []:
        for f in s.get("failures") or []:
            out[(f["case"], f["trial"], s["id"])] = f
    return out
