"""Results + gate settings → verdicts and the exit code (SPEC §6).

Reads results only; never calls an endpoint. Exit 3 (no trustworthy verdict) takes
precedence over exit 1 (a gate failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import stats
from ..errors import RunAborted
from . import units as unit_steps
from .schema import GateOverrides, GateRow, GateSettings, Results, Verdict, load

EXIT_PASS, EXIT_FAIL, EXIT_UNTRUSTED, EXIT_INTERRUPTED = 0, 1, 3, 130


def resolve(pipeline: Any, overrides: GateOverrides | None = None) -> GateSettings:
    """Gate settings from the pipeline's ``gates:`` with CLI flags on top.

    Args:
        pipeline: The loaded pipeline (``config.load_pipeline``); a relative baseline path is
            taken relative to its file.
        overrides: Settings given on the command line (``--min-end-to-end``, ``--gate-mode``…);
            ``step_mins`` are added to the pipeline's, every other field replaces its value.

    Returns:
        The settings :func:`apply` judges with.
    """
    g = pipeline.model.gates
    baseline_path = None
    if g.baseline:
        baseline_path = (
            g.baseline.path if Path(g.baseline.path).is_absolute() else str(pipeline.path.parent / g.baseline.path)
        )
    settings: dict[str, Any] = {
        "end_to_end_min": g.end_to_end.min if g.end_to_end else None,
        "step_mins": {k: v.min for k, v in g.steps.items()},
        "mode": g.mode,
        "confidence": g.confidence,
        "max_error_rate": g.max_error_rate,
        "baseline_path": baseline_path,
        "max_drop": g.baseline.max_drop if g.baseline else 0.0,
        "alpha": g.baseline.alpha if g.baseline else 0.05,
    }
    if overrides is not None:
        for key, value in overrides.model_dump(exclude_none=True).items():
            if key == "step_mins":
                settings["step_mins"] = {**settings["step_mins"], **value}
            else:
                settings[key] = value
    return GateSettings(**settings)


def precheck(cfg: GateSettings, cases: int, trials: int) -> None:
    """Before any call: refuse a lower-bound gate the eval set could never pass (exit 3).

    Args:
        cfg: The resolved gate settings.
        cases: Cases the run will have.
        trials: Trials per case.

    Raises:
        RunAborted: Even with every case passing, the one-sided bound could not reach the
            highest threshold.
    """
    if cfg.mode != "lower-bound":
        return
    thresholds = [t for t in [cfg.end_to_end_min, *cfg.step_mins.values()] if t is not None]
    if not thresholds:
        return
    if max(thresholds) >= 1.0:
        raise RunAborted(
            "a lower-bound gate of 1 can never pass: no finite number of cases puts a confidence bound at 100%",
            hint="use a threshold below 1, or `mode: point`",
        )
    need = stats.min_units_for_lower_bound(max(thresholds), cfg.confidence)
    if cases < need:
        raise RunAborted(
            f"{cases} cases can never clear a lower-bound gate of {max(thresholds):g} at "
            f"{cfg.confidence:g} confidence: even with every case passing, the one-sided "
            f"Clopper-Pearson bound needs at least {need} cases",
            hint="add cases, lower the threshold, or use `mode: point`",
        )


def apply(results: Results, cfg: GateSettings, baseline: Results | None = None) -> Results:
    """Judge results by their gates.

    Args:
        results: The run's results (gates not yet applied).
        cfg: The resolved gate settings.
        baseline: The baseline's results; loaded from ``cfg.baseline_path`` when None.

    Returns:
        A copy of ``results`` with ``gates``, ``verdict``, ``exit_code`` and
        ``run.gate_settings`` filled in.
    """
    verdicts: list[GateRow] = []
    if cfg.end_to_end_min is not None:
        verdicts.append(_min_gate(results, None, cfg.end_to_end_min, cfg))
    for step in results.steps:
        if step.id in cfg.step_mins:
            verdicts.append(_min_gate(results, step.id, cfg.step_mins[step.id], cfg))
    if cfg.baseline_path and baseline is None:
        baseline = load(cfg.baseline_path)
    if baseline is not None:
        from .compare import baseline_gates

        verdicts.extend(baseline_gates(baseline, results, cfg.max_drop, cfg.alpha))
    run = results.run.model_copy(update={"gate_settings": cfg})
    judged = results.model_copy(update={"run": run, "gates": tuple(verdicts)})
    verdict, code = _verdict(judged, verdicts, cfg)
    return judged.model_copy(update={"verdict": verdict, "exit_code": code})


def _min_gate(results: Results, step: str | None, threshold: float, cfg: GateSettings) -> GateRow:
    row = results.end_to_end if step is None else results.step(step)
    name = "end_to_end" if step is None else f"step:{step}"
    observed = row.rate
    n = row.total if step is None else row.reached  # type: ignore[union-attr]
    if observed is None:
        return GateRow(
            name=name, threshold=threshold, observed=None, bound=None, passed=False, detail="no unit reached this step"
        )
    bound = None
    size = f"n={n}"
    if cfg.mode == "lower-bound":
        if results.run.trials > 1:
            counts = unit_steps.case_counts(results.units, results.step_ids, step)
            bound = stats.clustered_lower_bound(unit_steps.shares(counts), cfg.confidence, units=n)
            size = f"n={len(counts)} cases, {n} units"  # the bound is over cases (clustered)
        else:
            bound = stats.clopper_pearson_lower(row.passed, n, cfg.confidence)
        passed = bound >= threshold
        detail = (
            f"{cfg.confidence:.0%} lower bound {bound:.4f} {'≥' if passed else '<'} {threshold:g} "
            f"(observed {observed:.4f}, {size})"
        )
    else:
        passed = observed >= threshold
        detail = f"observed {observed:.4f} {'≥' if passed else '<'} {threshold:g} ({size})"
    return GateRow(name=name, threshold=threshold, observed=observed, bound=bound, passed=bool(passed), detail=detail)


def _verdict(results: Results, verdicts: Sequence[GateRow], cfg: GateSettings) -> tuple[Verdict, int]:
    run, e2e = results.run, results.end_to_end
    if run.interrupted:
        return "error", EXIT_INTERRUPTED
    if run.stop_reason:
        return "error", EXIT_UNTRUSTED
    if e2e.error_rate is not None and e2e.error_rate > cfg.max_error_rate:
        return "error", EXIT_UNTRUSTED
    if e2e.total == 0:
        return "error", EXIT_UNTRUSTED
    if run.shard:
        return "pass", EXIT_PASS  # a shard reports but does not gate: `relcheck merge` gates
    if any(not v.passed for v in verdicts):
        return "fail", EXIT_FAIL
    return "pass", EXIT_PASS
