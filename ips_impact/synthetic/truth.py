"""Exact sample truths of a synthetic trial, computed from both potential worlds.

* :func:`ate_table` — the sample average effects ``mean(Y(1) - Y(0))`` by population,
  outcome, event time ``k`` and region.
* :func:`late_table` — the compliers' average effect (the LATE that an IV estimator
  with assignment instrumenting take-up targets).
* :func:`rmst_table` — the restricted mean time to the first event (first job) per arm.
* :func:`state_occupation_table`, :func:`mcf_table` — career-state probabilities and
  mean cumulative job starts per arm by quarter (from :func:`career_potentials`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ips_impact.synthetic.params import REGIONS
from ips_impact.synthetic.world import OUTCOMES, Group, World, quarterly_chunked

__all__ = ["ate_table", "late_table", "rmst_table", "POPULATIONS", "first_event_time",
           "CAREER_STATES", "career_potentials", "state_occupation_table", "mcf_table"]

#: Populations of the truth table: randomized participants, their baseline partners,
#: all baseline household members with an own panel (partners and working-age children).
POPULATIONS: tuple[str, ...] = ("participants", "partners", "members")


def _groups(region: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Group labels ("all" and the regions present) and an indicator matrix (m, G)."""
    labels = ["all"]
    cols = [np.ones(region.size, dtype=bool)]
    for ri, r in enumerate(REGIONS):
        mask = region == ri
        if mask.any():
            labels.append(r)
            cols.append(mask)
    return labels, np.stack(cols, axis=1)


def _present(labels: list[str], ind: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Keep the groups of :func:`_groups` that hold someone (labels, indicator columns)."""
    keep = np.asarray(ind.any(axis=0))
    return [lab for lab, k in zip(labels, keep) if k], ind[:, keep]


def _means(y0: np.ndarray, y1: np.ndarray, ind: np.ndarray) -> tuple[np.ndarray, ...]:
    """Means of Y(0), Y(1) (K, m) within each group of ``ind`` (m, G) → (G, K) each."""
    return _means_f(y0.astype(np.float64), y1.astype(np.float64), ind)


def _means_f(y0: np.ndarray, y1: np.ndarray, ind: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`_means` of outcomes already converted to float64."""
    w = ind.astype(np.float64)
    n = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (y0 @ w / n).T
        t = (y1 @ w / n).T
    return c, t, n


def _frame(labels: list[str], n: np.ndarray, ks: np.ndarray, outcomes: Sequence[str],
           c: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    """Tidy frame from (O, G, K) arrays of control and treated means (order outcome → group → k)."""
    O, G, K = c.shape
    return pd.DataFrame({
        "outcome": np.repeat(np.asarray(outcomes, dtype=object), G * K),
        "k": np.tile(ks.astype(np.int64), O * G),
        "group": np.tile(np.repeat(np.asarray(labels, dtype=object), K), O),
        "n": np.tile(np.repeat(n.astype(np.int64), K), O),
        "effect": (t - c).ravel(),
        "control_mean": c.ravel(),
        "treated_mean": t.ravel(),
    })


def _table(y0s: dict, y1s: dict, outcomes: Sequence[str], cols: np.ndarray, ks: np.ndarray,
           region: np.ndarray, mask: np.ndarray) -> pd.DataFrame:
    return _tables(y0s, y1s, outcomes, cols, ks, region, [mask])[0]


def _tables(y0s: dict, y1s: dict, outcomes: Sequence[str], cols: np.ndarray, ks: np.ndarray,
            region: np.ndarray, masks: Sequence[np.ndarray]) -> list[pd.DataFrame]:
    """:func:`_table` for several subsets ``masks`` of the same persons.

    Each outcome is converted to float64 once for all the subsets (the conversion, not
    the products, is most of the time on large samples); the products are the same.
    """
    labels0, ind0 = _groups(region)
    specs = [_present(labels0, ind0 & mask[:, None]) for mask in masks]
    cs: list[list[np.ndarray]] = [[] for _ in specs]
    ts: list[list[np.ndarray]] = [[] for _ in specs]
    # the rows are consecutive: a slice is the same C-ordered rows as cols, without a copy
    rows = slice(int(cols[0]), int(cols[-1]) + 1) if cols.size and np.array_equal(
        cols, np.arange(cols[0], cols[0] + cols.size)) else cols
    # one pair of float64 buffers for all outcomes (a fresh array per outcome costs its
    # pages again); the same values and layout as astype(np.float64)
    y0 = y1 = np.empty((0, 0))
    for o in outcomes:
        a0, a1 = y0s[o][rows], y1s[o][rows]
        if y0.shape != a0.shape:
            y0, y1 = np.empty(a0.shape), np.empty(a1.shape)
        np.copyto(y0, a0)
        np.copyto(y1, a1)
        for j, (_, ind) in enumerate(specs):
            c, t, _ = _means_f(y0, y1, ind)
            cs[j].append(c)
            ts[j].append(t)
    del y0, y1
    return [_frame(labels, ind.sum(axis=0), ks, outcomes, np.stack(c), np.stack(t))
            for (labels, ind), c, t in zip(specs, cs, ts)]


Potentials = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def potentials(w: World, g: Group, outcomes: Sequence[str] = OUTCOMES) -> Potentials:
    """Quarterly Y(0), Y(1) of every person of ``g`` (dicts of arrays (Q, m))."""
    return _potentials(w, g, outcomes)


def _potentials(w: World, g: Group, outcomes: Sequence[str]) -> Potentials:
    p = w.params
    keep = frozenset(outcomes) | {"di_phase"}
    y0 = quarterly_chunked(g, np.zeros(g.m, dtype=np.int8), p, details=False, only=keep)
    y1 = quarterly_chunked(g, np.ones(g.m, dtype=np.int8), p, details=False, only=keep)
    return y0, y1


def _member_masks(w: World) -> dict[str, np.ndarray]:
    g = w.member_group
    assert g is not None
    return {"partners": (g.role == "partner") & g.baseline, "members": g.baseline.copy()}


def ate_table(
    w: World, *, outcomes: Sequence[str] = OUTCOMES, members: bool = True,
    pots: Potentials | None = None, member_pots: Potentials | None = None,
    populations: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Sample average effects for every population, outcome, k in the panel, region.

    Columns: ``population, outcome, k, group, n, ate, control_mean, treated_mean``
    with ``ate = mean_i(Y_i(1) - Y_i(0))`` over the persons of the population (and
    region ``group``; members are grouped by their index person's region) at event
    time ``k`` (quarters since the randomization quarter).

    ``pots`` and ``member_pots`` are the participants' and the members' potential
    outcomes when already computed; ``populations`` restricts the rows to those
    populations (in :data:`POPULATIONS` order; default: all, members only if ``members``).
    """
    p = w.params
    ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
    cols = w.origin + ks
    parts = [("participants", w.participants, np.ones(w.participants.m, dtype=bool))]
    if members and w.member_group is not None:
        masks = _member_masks(w)
        parts += [(name, w.member_group, masks[name]) for name in ("partners", "members")]
    if populations is not None:
        parts = [part for part in parts if part[0] in set(populations)]
    frames = []
    cache: dict[int, Potentials] = {}
    if pots is not None:
        cache[id(w.participants)] = pots
    if member_pots is not None and w.member_group is not None:
        cache[id(w.member_group)] = member_pots
    for g in list({id(g): g for _, g, _ in parts}.values()):  # each group once, in order
        items = [(name, mask) for name, gg, mask in parts if gg is g]
        if id(g) not in cache:
            cache[id(g)] = _potentials(w, g, outcomes)
        y0s, y1s = cache[id(g)]
        dfs = _tables(y0s, y1s, outcomes, cols, ks, g.region, [mask for _, mask in items])
        for (name, _), df in zip(items, dfs):
            df.insert(0, "population", name)
            frames.append(df)
    return _ate_frame(frames)


def _ate_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True).rename(columns={"effect": "ate"})
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
    return _late_frame(w, _table(y0s, y1s, outcomes, cols, ks, g.region, comp))


def _late_frame(w: World, out: pd.DataFrame) -> pd.DataFrame:
    labels, ind = _groups(w.participants.region)
    sizes = dict(zip(labels, ind.sum(axis=0).tolist()))
    out = out.rename(columns={"n": "n_compliers", "effect": "late"})
    out.insert(4, "complier_share", out["n_compliers"] / out["group"].map(sizes).astype(np.float64))
    out["estimand"] = "LATE"
    return out


def participant_tables(w: World, pots: Potentials) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ate_table(w, pots=pots, populations=["participants"])`` and ``late_table(w, pots=pots)``.

    Both at once: each outcome of the potential outcomes is converted once.
    """
    p = w.params
    ks = np.arange(-p.pre_quarters, p.post_quarters + 1)
    cols = w.origin + ks
    g = w.participants
    comp = w.pop.takeup_if_ips & ~w.pop.takeup_if_control
    ate, late = _tables(pots[0], pots[1], OUTCOMES, cols, ks, g.region,
                        [np.ones(g.m, dtype=bool), comp])
    ate.insert(0, "population", "participants")
    return _ate_frame([ate]), _late_frame(w, late)


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
    """Return the true restricted mean time to the first event, per arm, for participants.

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
        labels, ind = _groups(g.region)
        for tau in taus:
            for gname, gmask in zip(labels, ind.T):
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


# --------------------------------------------------------------------- careers (issue 13)

#: Career states of the truth, in the order of ``ips_impact.estimators.careers.DEFAULT_STATES``.
CAREER_STATES: tuple[str, ...] = ("work", "work_on_di", "di_only", "unemployed", "other")


def career_potentials(w: Any, *, horizon: int | None = None) -> dict[str, np.ndarray]:
    """Both potential careers of every participant at k = 0..horizon.

    ``w`` is a :class:`~ips_impact.synthetic.SyntheticTrial` (or its world).

    Returns ``state0``, ``state1`` (int8, (m, K): codes of :data:`CAREER_STATES`,
    from the generator's employed / on_di / sep_code in each world by the rule of
    ``ips_impact.estimators.careers``) and ``starts0``, ``starts1`` (int8, (m, K): a
    job start at k >= 1, employed at k after not employed at k - 1).
    """
    w = getattr(w, "_world", w)
    p = w.params
    last = p.post_quarters if horizon is None else min(int(horizon), p.post_quarters)
    g = w.participants
    cols = w.origin + np.arange(0, last + 1)
    out: dict[str, np.ndarray] = {}
    for a in (0, 1):
        q = quarterly_chunked(g, np.full(g.m, a, dtype=np.int8), p, details=True,
                              only={"employed", "on_di"})
        e = q["employed"][cols].T.astype(bool)
        d = q["on_di"][cols].T.astype(bool)
        seek = (q["sep_code"][cols].T // 100) == 2  # codes are 3 digits: first digit 2 = job-seeker
        out[f"state{a}"] = np.select([e & ~d, e & d, ~e & d, ~e & ~d & seek], [0, 1, 2, 3],
                                     default=4).astype(np.int8)
        starts = np.zeros(e.shape, dtype=np.int8)
        starts[:, 1:] = e[:, 1:] & ~e[:, :-1]
        out[f"starts{a}"] = starts
    return out


def state_occupation_table(w: Any, *, pots: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Tabulate the true probability of each career state per arm and quarter (participants).

    :math:`p_{as}(k) = \\frac1m \\sum_i 1[X_i(a)(k) = s]` over the sample's potential
    careers in world a. Columns: ``k, state, group, n, p_control, p_treated,
    difference`` (group "all" and each region), ``estimand`` "state_occupation".
    """
    w = getattr(w, "_world", w)  # a SyntheticTrial or its world
    cp = career_potentials(w) if pots is None else pots
    labels, ind = _groups(w.participants.region)
    K = cp["state0"].shape[1]
    frames = []
    for gname, gmask in zip(labels, ind.T):
        for s, name in enumerate(CAREER_STATES):
            p0 = (cp["state0"][gmask] == s).mean(axis=0)
            p1 = (cp["state1"][gmask] == s).mean(axis=0)
            frames.append(pd.DataFrame({"k": np.arange(K), "state": name, "group": gname,
                                        "n": int(gmask.sum()), "p_control": p0, "p_treated": p1,
                                        "difference": p1 - p0}))
    out = pd.concat(frames, ignore_index=True)
    out["estimand"] = "state_occupation"
    return out


def mcf_table(w: Any, *, pots: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Tabulate the true mean number of job starts per person in quarters 1..k, per arm.

    :math:`\\mu_a(k) = \\frac1m \\sum_i N_i(a)(k)`. Columns: ``k, group, n,
    mcf_control, mcf_treated, difference``, ``estimand`` "mcf".
    """
    w = getattr(w, "_world", w)  # a SyntheticTrial or its world
    cp = career_potentials(w) if pots is None else pots
    labels, ind = _groups(w.participants.region)
    K = cp["starts0"].shape[1]
    frames = []
    for gname, gmask in zip(labels, ind.T):
        m0 = np.cumsum(cp["starts0"][gmask], axis=1).mean(axis=0)
        m1 = np.cumsum(cp["starts1"][gmask], axis=1).mean(axis=0)
        frames.append(pd.DataFrame({"k": np.arange(K), "group": gname, "n": int(gmask.sum()),
                                    "mcf_control": m0, "mcf_treated": m1, "difference": m1 - m0}))
    out = pd.concat(frames, ignore_index=True)
    out["estimand"] = "mcf"
    return out
