"""How often does the baseline gate fail a candidate that did not regress, and how often does
it catch one that did? Independent baseline/candidate pairs (each pair drawn afresh), six
steps, the real gate (``results.compare.baseline_gates``) on synthetic unit tables.

    python bench/false_failures.py [--reps 400] [--units 1000]

No network, no server; about a minute at the defaults.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reliability_cli.results.compare import baseline_gates  # noqa: E402
from tests.results.helpers import doc_from_fail_idx, simulate_fail_idx  # noqa: E402

STEPS = [f"s{i}" for i in range(6)]


def rate(
    rng: np.random.Generator, base: list[float], cand: list[float], units: int, reps: int, max_drop: float
) -> float:
    fails = 0
    for _ in range(reps):
        b = doc_from_fail_idx(STEPS, simulate_fail_idx(base, units, rng))
        c = doc_from_fail_idx(STEPS, simulate_fail_idx(cand, units, rng))
        fails += not all(g.passed for g in baseline_gates(b, c, max_drop, 0.05))
    return fails / reps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--units", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    same = [0.97] * 6
    print(f"baseline gate, six steps at 97%, {args.units} units, alpha 0.05, {args.reps} independent pairs each")
    for max_drop in (0.0, 0.02):
        r = rate(rng, same, same, args.units, args.reps, max_drop)
        se = math.sqrt(max(r * (1 - r), 1e-9) / args.reps)
        print(f"  no change, max_drop {max_drop:g}: fails {r:.1%} ± {se:.1%}")
    for drop in (0.01, 0.02, 0.07):
        cand = [0.97, 0.97, 0.97 - drop, 0.97, 0.97, 0.97]
        r = rate(rng, same, cand, args.units, args.reps, 0.02)
        print(f"  one step drops {drop * 100:.0f} pts, max_drop 0.02: fails {r:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
