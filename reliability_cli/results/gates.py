"""Results + gate settings → verdicts and the exit code (SPEC §6).

Reads results only; never calls an endpoint. Exit 3 (no trustworthy verdict) takes
precedence over exit 1 (a gate failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import stats
from ..errors import RunAborted

EXIT_PASS, EXIT_FAIL, EXIT_INVALID, EXIT_UNTRUSTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass
class GateConfig:
    end_to_end_min: float | None = None
    step_mins: dict[str, float] = field(default_factory=dict)
    mode: str = "point"
    confidence: float = 0.95
    max_error_rate: float = 0.10
    baseline_path: str | None = None
    max_drop: float = 0.0
    alpha: float = 0.05

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(pipeline: Any, overrides: Mapping[str, Any]) -> GateConfig:
    """Gate settings from the pipeline's ``gates:`` with CLI flags on top."""
    g = pipeline.model.gates
    cfg = GateConfig(
        end_to_end_min=g.end_to_end.min if g.end_to_end else None,
        step_mins={k: v.min for k, v in g.steps.items()},
        mode=g.mode, confidence=g.confidence, max_error_rate=g.max_error_rate,
        baseline_path=g.baseline.path if g.baseline else None,
        max_drop=g.baseline.max_drop if g.baseline else 0.0,
        alpha=g.baseline.alpha if g.baseline else 0.05,
    )
    if g.baseline and not _is_abs(g.baseline.path):
        cfg.baseline_path = str(pipeline.path.parent / g.baseline.path)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "step_mins":
            cfg.step_mins.update(value)
        else:
            setattr(cfg, key, value)
    return cfg


def _is_abs(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_absolute()


def precheck(cfg: GateConfig, cases: int, trials: int) -> None:
    """Before any call: refuse a lower-bound gate the eval set could never pass (exit 3)."""
    if cfg.mode != "lower-bound":
        return
    thresholds = [t for t in [cfg.end_to_end_min, *cfg.step_mins.values()] if t is not None]
    if not thresholds:
        return
    if max(thresholds) >= 1.0:
        raise RunAborted(
            "a lower-bound gate of 1 can never pass: no finite number of cases puts a "
            "confidence bound at 100%", hint="use a threshold below 1, or `mode: point`")
    need = stats.min_units_for_lower_bound(max(thresholds), cfg.confidence)
    if cases < need:
        raise RunAborted(
            f"{cases} cases can never clear a lower-bound gate of {max(thresholds):g} at "
            f"{cfg.confidence:g} confidence: even with every case passing, the one-sided "
            f"Clopper-Pearson bound needs at least {need} cases",
            hint="add cases, lower the threshold, or use `mode: point`")


def apply(results: dict[str, Any], cfg: GateConfig, baseline: Mapping[str, Any] | None = None) -> None:
    """Fill ``gates``, ``verdict`` and ``exit_code`` of ``results`` in place."""
    results["run"]["gate_settings"] = cfg.as_dict()
    verdicts: list[dict[str, Any]] = []
    e2e = results["end_to_end"]
    trials = results["run"].get("trials", 1)
    if cfg.end_to_end_min is not None:
        verdicts.append(_min_gate("end_to_end", e2e, cfg.end_to_end_min, cfg, trials, results, None))
    for step in results["steps"]:
        if step["id"] in cfg.step_mins:
            verdicts.append(_min_gate(f"step:{step['id']}", step, cfg.step_mins[step["id"]], cfg, trials,
                                      results, step["id"]))
    if cfg.baseline_path and baseline is None:
        baseline = _load_baseline(cfg.baseline_path)
    if baseline is not None:
        from .compare import baseline_gates

        verdicts.extend(baseline_gates(baseline, results, cfg.max_drop, cfg.alpha))
    results["gates"] = verdicts
    results["verdict"], results["exit_code"] = _verdict(results, verdicts, cfg)


def _load_baseline(path: str) -> Mapping[str, Any]:
    from .schema import load_results

    return load_results(path)


def _min_gate(name: str, row: Mapping[str, Any], threshold: float, cfg: GateConfig, trials: int,
              results: Mapping[str, Any], step: str | None) -> dict[str, Any]:
    observed = row.get("rate")
    n = row.get("reached", row.get("total", 0))
    if observed is None:
        return {"name": name, "threshold": threshold, "observed": None, "bound": None, "passed": False,
                "detail": "no unit reached this step"}
    bound = None
    if cfg.mode == "lower-bound":
        if trials > 1:
            shares = _case_shares(results, step)
            bound = stats.clustered_lower_bound(shares, cfg.confidence)
        else:
            bound = stats.clopper_pearson_lower(row["passed"], n, cfg.confidence)
        passed = bound >= threshold
        detail = (f"{cfg.confidence:.0%} lower bound {bound:.4f} {'≥' if passed else '<'} {threshold:g} "
                  f"(observed {observed:.4f}, n={n})")
    else:
        passed = observed >= threshold
        detail = f"observed {observed:.4f} {'≥' if passed else '<'} {threshold:g} (n={n})"
    return {"name": name, "threshold": threshold, "observed": observed, "bound": bound,
            "passed": bool(passed), "detail": detail}


def _case_shares(results: Mapping[str, Any], step: str | None) -> list[float]:
    """Per-case pass shares (end to end, or at ``step`` among the trials that reached it)."""
    order = {s["id"]: i for i, s in enumerate(results["steps"])}
    per_case: dict[str, list[int]] = {}
    for u in results["units"]:
        failed_at = order.get(u["failed_step"], len(order)) if not u["passed"] else len(order)
        if step is None:
            reached, passed = True, bool(u["passed"])
        else:
            reached, passed = failed_at >= order[step], failed_at > order[step]
        if reached:
            pc = per_case.setdefault(u["case"], [0, 0])
            pc[1] += 1
            pc[0] += int(passed)
    return [p / n for p, n in per_case.values() if n]


def _verdict(results: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]], cfg: GateConfig) -> tuple[str, int]:
    run = results["run"]
    if run.get("interrupted"):
        return "error", EXIT_INTERRUPTED
    if run.get("stop_reason"):
        return "error", EXIT_UNTRUSTED
    rate = results["end_to_end"].get("error_rate")
    if rate is not None and rate > cfg.max_error_rate:
        return "error", EXIT_UNTRUSTED
    if results["end_to_end"]["total"] == 0:
        return "error", EXIT_UNTRUSTED
    if run.get("shard"):
        return "pass", EXIT_PASS  # a shard reports but does not gate: `relcheck merge` gates
    if any(not v["passed"] for v in verdicts):
        return "fail", EXIT_FAIL
    return "pass", EXIT_PASS


def error_gate(results: Mapping[str, Any], cfg: GateConfig) -> dict[str, Any] | None:
    """The infrastructure error budget as a gate row, for reports."""
    rate = results["end_to_end"].get("error_rate")
    if rate is None:
        return None
    return {"name": "max_error_rate", "threshold": cfg.max_error_rate, "observed": rate, "bound": None,
            "passed": rate <= cfg.max_error_rate,
            "detail": f"infrastructure errors in {rate:.2%} of units (max {cfg.max_error_rate:.0%})"}
