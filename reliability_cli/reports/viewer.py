"""The HTML report's unit viewer: every unit the report keeps, openable to the detail of
``relcheck show`` (vars, expect, each attempt's request, full output, tool calls, every check).

The detail comes from the run directory named in ``results.json`` (``run.dir``): its
``attempts.jsonl`` and ``requests.jsonl``. Budget (one self-contained file must stay small
enough to open): every failing unit up to :data:`FAILING_MAX`, and passing units up to
:data:`PASSING_MAX`. Rendered from ``templates/viewer.html.j2`` with autoescape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results.schema import Results

FAILING_MAX = 2000
PASSING_MAX = 200
TEMPLATES = Path(__file__).with_name("templates")


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["j2", "html"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    # readable JSON as *text* (escaped by autoescape like any other value), not as markup
    env.filters["tojson_text"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str)
    return env


def load_viewer_units(results: Results, run_dir: str | None = None) -> tuple[list[dict[str, Any]], int, str | None]:
    """The units the viewer shows, read from the run directory's journal.

    Args:
        results: The run's typed results (``run.dir`` names the run directory).
        run_dir: A run directory to read instead, when it holds a journal.

    Returns:
        The units (as :func:`reliability_cli.show.load_units` gives them, each with its
        ``reason``), how many units the budget left out, and the run directory (the recorded
        one when neither holds a journal: then there are no units).
    """
    from ..show import Selection, load_units

    recorded = results.run.dir
    found = next(
        (
            d
            for d in (run_dir, recorded)
            if d and any((Path(d) / name).exists() for name in ("attempts.jsonl", "attempts.jsonl.gz"))
        ),
        None,
    )
    if found is None:
        return [], 0, recorded
    run_dir = found
    failing = load_units(run_dir, Selection(outcome="failing", limit=FAILING_MAX), results)
    passing = load_units(run_dir, Selection(outcome="pass", limit=PASSING_MAX), results)
    units = failing.units + passing.units
    for u in units:
        u["reason"] = _reason(u)
    return units, max(0, passing.matched - len(passing.units)) + max(0, failing.matched - len(failing.units)), run_dir


def _reason(unit: Mapping[str, Any]) -> str | None:
    for step in unit["steps"]:
        if step["step"] == unit.get("failed_step") and step["attempts"]:
            return step["attempts"][-1].get("reason")
    return None


def render_viewer(results: Results, run_dir: str | None = None) -> str:
    """The viewer's ``<section>``.

    Args:
        results: The run's typed results.
        run_dir: Where to read the journal (default: ``run.dir``).

    Returns:
        The section's HTML, or "" when the run directory is gone (then the failures table stands).
    """
    units, omitted, run_dir = load_viewer_units(results, run_dir)
    if not units:
        return ""
    steps = results.step_ids
    kinds = sorted({u["error_kind"] for u in units if u.get("error_kind")})
    tags = sorted({t for u in units for t in u.get("tags") or ()})
    outcomes = [o for o in ("pass", "fail", "error", "incomplete") if any(u["outcome"] == o for u in units)]
    template = _environment().get_template("viewer.html.j2")
    return str(
        template.render(
            units=units, omitted=omitted, run_dir=run_dir, steps=steps, kinds=kinds, tags=tags, outcomes=outcomes
        )
    )


VIEWER_CSS = """
.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;margin:0 0 10px}.filters select,.filters input{padding:3px 6px}
#f-q{width:280px}#f-count{color:#57606a}details.unit{border:1px solid #d0d7de;border-radius:6px;margin:4px 0;padding:4px 8px}
details.unit[open]{background:#f6f8fa}details.unit.fail>summary b{color:#cf222e}details.unit.error>summary b{color:#bf8700}
details.unit.pass>summary b{color:#1a7f37}summary{cursor:pointer}.sumreason{color:#57606a;margin-left:6px}
.kind,.tag{display:inline-block;white-space:nowrap;border-radius:10px;padding:0 7px;font-size:12px;background:#eaeef2}
.kind{background:#fff8c5}.step h4{margin:10px 0 4px;font-size:14px}.attempt{border-left:3px solid #d0d7de;padding:2px 0 6px 10px;margin:4px 0}
.attempt.fail{border-color:#cf222e}.attempt.error{border-color:#bf8700}.attempt.pass{border-color:#1a7f37}.ahead{color:#57606a}
.kv{margin:3px 0}.kv>span:first-child,.role{display:inline-block;min-width:64px;color:#57606a;font-size:12px;vertical-align:top}
.msg pre,.kv pre{display:inline-block;max-width:calc(100% - 80px);vertical-align:top;background:#fff;border:1px solid #eaeef2;padding:4px 6px;white-space:pre-wrap;word-break:break-word}
ul.checks{margin:4px 0;padding-left:20px}ul.checks li.bad{color:#cf222e}ul.checks li.ok{color:#1a7f37}.reason{white-space:pre-wrap;word-break:break-word}
"""

VIEWER_JS = """
(function(){
  var box=document.getElementById('units');if(!box)return;
  var units=[].slice.call(box.querySelectorAll('details.unit'));
  var sel={step:document.getElementById('f-step'),outcome:document.getElementById('f-outcome'),
           kind:document.getElementById('f-kind'),tag:document.getElementById('f-tag'),q:document.getElementById('f-q')};
  function params(){var out={};(location.hash||'').replace(/^#/,'').split('&').forEach(function(p){
    var i=p.indexOf('=');if(i>0)out[decodeURIComponent(p.slice(0,i))]=decodeURIComponent(p.slice(i+1));});return out;}
  function apply(){var shown=0,q=sel.q.value.toLowerCase();
    units.forEach(function(u){var ok=(!sel.step.value||(' '+u.dataset.steps+' ').indexOf(' '+sel.step.value+' ')>=0)
      &&(!sel.outcome.value||u.dataset.outcome===sel.outcome.value)&&(!sel.kind.value||u.dataset.kind===sel.kind.value)
      &&(!sel.tag.value||(' '+u.dataset.tags+' ').indexOf(' '+sel.tag.value+' ')>=0)
      &&(!q||u.textContent.toLowerCase().indexOf(q)>=0);u.hidden=!ok;if(ok)shown++;});
    document.getElementById('f-count').textContent=shown+' of '+units.length+' units';}
  function fromHash(){var p=params();['step','outcome','kind','tag','q'].forEach(function(k){if(k in p)sel[k].value=p[k];});
    apply();if(p.unit){units.forEach(function(u){if(u.dataset.unit===p.unit){u.hidden=false;u.open=true;u.scrollIntoView();}});}}
  ['step','outcome','kind','tag'].forEach(function(k){sel[k].addEventListener('change',apply);});
  sel.q.addEventListener('input',apply);
  units.forEach(function(u){u.addEventListener('toggle',function(){if(u.open&&history.replaceState)
    history.replaceState(null,'','#unit='+encodeURIComponent(u.dataset.unit).replace(/%2F/g,'/'));});});
  window.addEventListener('hashchange',fromHash);fromHash();
})();
"""
