"""How the defaults of :class:`SyntheticParams` were calibrated (and how to redo it).

:func:`calibration_moments` computes, from both potential worlds of one large sample,
the quantities that shared/DOMAIN.md gives targets for. :func:`recalibrate` adjusts
the free parameters by damped fixed-point steps until the moments hit the targets.
The defaults were obtained with ``recalibrate(SyntheticParams(), n=100_000, seed=101)``
(about ten steps of ≈ 8 s each); they reproduce the targets within ≈ 0.3 pp
(EUR 2 for the benefit level) on that sample.

Parameters tuned and the target each one mainly moves:

=============================  ==============================================
``entry_rate_post`` (region)   control working on DI at k = 6: VL 32%, WAL 26.5%,
                               BXL 22.5% (≈ 29% overall)
``effect_size``                IPS effect on working on DI at k = 6: +9.5 pp
``effect_fade_months``         effect at k = 10: +7.5 pp
``effect_floor``               effect at k = 20: +4.5 pp
``benefit_scale``              control DI benefit at k = 10: EUR 1,160 a month
``ips_di_exit_multiplier``     effect on the DI benefit at k = 10: −EUR 110
=============================  ==============================================
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ips_impact.synthetic.params import REGIONS, SyntheticParams
from ips_impact.synthetic.world import build_world, quarterly

__all__ = ["TARGETS", "calibration_moments", "recalibrate"]

#: Calibration targets (shared/DOMAIN.md), k in quarters since randomization.
TARGETS: dict[str, float] = {
    "control_work_on_di_k6_VL": 0.32,
    "control_work_on_di_k6_WAL": 0.265,
    "control_work_on_di_k6_BXL": 0.225,
    "effect_work_on_di_k6": 0.095,
    "effect_work_on_di_k10": 0.075,
    "effect_work_on_di_k20": 0.045,
    "control_di_benefit_k10": 1160.0,
    "effect_di_benefit_k10": -110.0,
}


def calibration_moments(p: SyntheticParams, *, n: int = 100_000, seed: int = 101) -> dict[str, float]:
    """Moments of the participants' potential outcomes on one sample of ``n``.

    Besides the targets, reports the employment and DI effects and the part-time
    fraction among the employed in each arm (k = 6).
    """
    w = build_world(n, seed, p, members=False)
    g, o = w.participants, w.origin
    q0 = quarterly(g, np.zeros(g.m, np.int8), p, details=False)
    q1 = quarterly(g, np.ones(g.m, np.int8), p, details=False)
    out: dict[str, float] = {}
    for ri, r in enumerate(REGIONS):
        out[f"control_work_on_di_k6_{r}"] = float(q0["work_on_di"][o + 6][g.region == ri].mean())
    out["control_work_on_di_k6"] = float(q0["work_on_di"][o + 6].mean())
    for k in (6, 10, 20):
        for y in ("work_on_di", "employed", "on_di", "di_benefit"):
            out[f"effect_{y}_k{k}"] = float(q1[y][o + k].mean() - q0[y][o + k].mean())
        out[f"control_di_benefit_k{k}"] = float(q0["di_benefit"][o + k].mean())
        out[f"control_on_di_k{k}"] = float(q0["on_di"][o + k].mean())
    for a, q in ((0, q0), (1, q1)):
        e = q["employed"][o + 6] == 1
        out[f"fte_employed_k6_arm{a}"] = float(q["fte"][o + 6][e].mean())
    return out


def recalibrate(
    p: SyntheticParams, *, n: int = 100_000, seed: int = 101, steps: int = 10, verbose: bool = False
) -> SyntheticParams:
    """Damped fixed-point steps on the tuned parameters towards :data:`TARGETS`."""

    def c(x: float, lo: float = 0.75, hi: float = 1.33) -> float:
        return float(min(hi, max(lo, x)))

    for step in range(steps):
        m = calibration_moments(p, n=n, seed=seed)
        if verbose:  # pragma: no cover - progress for a human
            print(step, {k: round(m[k], 4) for k in TARGETS})
        e6, e10, e20 = (m[f"effect_work_on_di_k{k}"] for k in (6, 10, 20))
        p = dataclasses.replace(
            p,
            entry_rate_post={
                r: p.entry_rate_post[r] * c(TARGETS[f"control_work_on_di_k6_{r}"] / m[f"control_work_on_di_k6_{r}"])
                for r in REGIONS
            },
            effect_size=p.effect_size * c(TARGETS["effect_work_on_di_k6"] / e6) ** 0.7,
            effect_floor=min(0.95, p.effect_floor * c(TARGETS["effect_work_on_di_k20"] / e20) ** 0.7),
            effect_fade_months=p.effect_fade_months
            * c((TARGETS["effect_work_on_di_k10"] / e10) / (TARGETS["effect_work_on_di_k6"] / e6)),
            benefit_scale=p.benefit_scale * c(TARGETS["control_di_benefit_k10"] / m["control_di_benefit_k10"]),
            ips_di_exit_multiplier=1.0 + (p.ips_di_exit_multiplier - 1.0)
            * c(TARGETS["effect_di_benefit_k10"] / m["effect_di_benefit_k10"]) ** 0.7,
        )
    return p
