"""Exact sample truths of a synthetic trial, computed from both potential worlds.

* :func:`ate_table` — the sample average effects ``mean(Y(1) - Y(0))`` by population,
  outcome, event time ``k`` and region.
* :func:`late_table` — the compliers' average effect (the LATE that an IV estimator
  with assignment instrumenting take-up targets).
* :func:`rmst_table` — the restricted mean time to the first event (first job) per arm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ips_impact.synthetic.params import REGIONS
from ips_impact.synthetic.world import OUTCOMES, Group, World, quarterly

__all__ = ["ate_table", "late_table", "rmst_table", "POPULATIONS", "first_event_time"]

#: Populations of the truth table: randomized participants, their baseline partners,
#: all baseline household members with an own panel (partners and working-age children).
POPULATIONS: tuple[str, ...] = ("participants", "partners", "members")


def _groups(region: np.ndarray) -> list[tuple[str, np.ndarray]]:
    out = [("all", np.ones(region.size, dtype=bool))]
    for ri, r in enumerate(REGIONS):
        mask = region == ri
        if mask.any():
            out.append((r, mask))
    return out


Potentials = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def potentials(w: World, g: Group, outcomes: Sequence[str] = OUTCOMES) -> Potentials:
    """Quarterly Y(0), Y(1) of every person of ``g`` (dicts of arrays (Q, m))."""
    return _potentials(w, g, outcomes)


def _potentials(w: World, g: Group, outcomes: Sequence[str]) -> Potentials:
    p = w.params
    q0 = quarterly(g, np.zeros(g.m, dtype=np.int8), p, details=False)
    q1 = quarterly(g, np.ones(g.m, dtype=np.int8), p, details=False)
    return ({o: q0[o] for o in outcomes}, {o: q1[o] for o in outcomes})


def _member_masks(w: World) -> dict[str, np.ndarray]:
    g = w.member_group
    assert g is not None
    return {"partners": (g.role == "partner") & g.baseline, "members": g.baseline.copy()}


def ate_table(
    w: World, *, outcomes: Sequence[str] = OUTCOMES, members: bool = True,
    pots: Potentials | None = None,
) -> pd.DataFrame:
    """Sample average effects for every population, outcome, k in the panel, region.

    Columns: ``population, outcome, k, group, n, ate, control_mean, treated_mean``
    with ``ate = mean_i(Y_i(1) - Y_i(0))`` over the persons of the population (and
    region ``group``; members are grouped by their index person's region) at event
    time ``k`` (quarters since the randomization quarter).
    """
    p = w.params
    ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
    cols = w.origin + ks
    parts = [("participants", w.participants, np.ones(w.participants.m, dtype=bool))]
    if members and w.member_group is not None:
        masks = _member_masks(w)
        parts += [(name, w.member_group, masks[name]) for name in ("partners", "members")]
    frames = []
    cache: dict[int, Potentials] = {}
    if pots is not None:
        cache[id(w.participants)] = pots
    for name, g, mask in parts:
        if id(g) not in cache:
            cache[id(g)] = _potentials(w, g, outcomes)
        y0s, y1s = cache[id(g)]
        for o in outcomes:
            y0 = y0s[o][cols].astype(np.float64)
            y1 = y1s[o][cols].astype(np.float64)
            for gname, gmask in _groups(g.region):
                sel = mask & gmask
                n = int(sel.sum())
                if n == 0:
                    continue
                c = y0[:, sel].mean(axis=1)
                t = y1[:, sel].mean(axis=1)
                frames.append(pd.DataFrame({
                    "population": name, "outcome": o, "k": ks.astype(np.int64), "group": gname,
                    "n": n, "ate": t - c, "control_mean": c, "treated_mean": t,
                }))
    out = pd.concat(frames, ignore_index=True)
    out["estimand"] = "ATE"
    return out


def late_table(
    w: World, *, outcomes: Sequence[str] = OUTCOMES, pots: Potentials | None = None
) -> pd.DataFrame:
    """Compliers' average effect ``mean(Y(1) - Y(0) | D(1) = 1, D(0) = 0)``.

    Columns: ``outcome, k, group, n_compliers, complier_share, late, control_mean,
    treated_mean`` (means among compliers). With exclusion (IPS only acts through
    starting it) ITT = complier share × LATE exactly in the sample.
    """
    p = w.params
    ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
    cols = w.origin + ks
    g = w.participants
    comp = w.pop.takeup_if_ips & ~w.pop.takeup_if_control
    y0s, y1s = pots if pots is not None else _potentials(w, g, outcomes)
    frames = []
    for o in outcomes:
        y0 = y0s[o][cols].astype(np.float64)
        y1 = y1s[o][cols].astype(np.float64)
        for gname, gmask in _groups(g.region):
            sel = comp & gmask
            n = int(sel.sum())
            if n == 0:
                continue
            c = y0[:, sel].mean(axis=1)
            t = y1[:, sel].mean(axis=1)
            frames.append(pd.DataFrame({
                "outcome": o, "k": ks.astype(np.int64), "group": gname, "n_compliers": n,
                "complier_share": n / int(gmask.sum()), "late": t - c,
                "control_mean": c, "treated_mean": t,
            }))
    out = pd.concat(frames, ignore_index=True)
    out["estimand"] = "LATE"
    return out


def first_event_time(event: np.ndarray, origin: int, start: int) -> np.ndarray:
    """First ``k ≥ start`` where ``event`` (Q, m) is true; ``inf`` if never."""
    sub = event[origin + start:] > 0
    hit = sub.any(axis=0)
    first = np.argmax(sub, axis=0).astype(np.float64) + start
    return np.where(hit, first, np.inf)


def rmst_table(
    w: World, *, events: Sequence[str] = ("employed", "work_on_di"), start: int = 1,
    taus: Sequence[int] | None = None, pots: Potentials | None = None,
) -> pd.DataFrame:
    """True restricted mean time to the first event, per arm, for participants.

    ``T_i(a)`` is the first event time ``k ≥ start`` (quarters since the randomization
    quarter) at which ``event`` holds in world ``a``; ``RMST_a(tau) = mean_i min(T_i(a),
    tau)`` (a person without the event by ``tau`` contributes ``tau``) — the area under
    the survival curve ``P(T > t)`` from 0 to ``tau``. Columns: ``event, start, tau,
    group, rmst_control, rmst_treated, difference, surv_control, surv_treated`` where
    ``surv_a = P(T(a) > tau)``.
    """
    p = w.params
    if taus is None:
        taus = sorted({t for t in (4, 8, 12, 20, p.post_quarters) if start <= t <= p.post_quarters})
    g = w.participants
    y0s, y1s = pots if pots is not None else _potentials(w, g, list(events))
    rows = []
    for ev in events:
        t0 = first_event_time(y0s[ev], w.origin, start)
        t1 = first_event_time(y1s[ev], w.origin, start)
        for tau in taus:
            for gname, gmask in _groups(g.region):
                r0 = np.minimum(t0[gmask], tau).mean()
                r1 = np.minimum(t1[gmask], tau).mean()
                rows.append({
                    "event": ev, "start": start, "tau": int(tau), "group": gname,
                    "rmst_control": r0, "rmst_treated": r1, "difference": r1 - r0,
                    "surv_control": float((t0[gmask] > tau).mean()),
                    "surv_treated": float((t1[gmask] > tau).mean()),
                })
    out = pd.DataFrame(rows)
    out["estimand"] = "RMST"
    return out
